#!/usr/bin/env bash
# Time and peak memory of `demix inspect` on long recordings: makes the synthetic stereo
# 44.1 kHz 16-bit FLAC files of scripts/long_recording.sh (minutes; default 3 60) and inspects
# each under /usr/bin/time -v with every set of options, printing one line per run. Not run by
# CI.
#
#   bash scripts/long_inspect.sh 3 60
#   CONFIGS="-k 8;--notes A0-C8 --midi notes.mid" bash scripts/long_inspect.sh 60
#
# DEMIX     the binary (default ./target/release/demix; copy it elsewhere to rebuild meanwhile)
# CONFIGS   sets of inspect options separated by ';' (default "-k 4;--notes A1-C7": the
#           default free components, and a piano roll of 75 note templates)
# WORK      folder for the inputs and outputs (default: a temporary folder, removed at exit)
#
# Needs python3 with numpy and soundfile (scripts/make_long_input.py encodes the FLAC inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
demix=${DEMIX:-./target/release/demix}
IFS=';' read -r -a configs <<< "${CONFIGS:--k 4;--notes A1-C7}"
if [[ -n "${WORK:-}" ]]; then
  work=$WORK
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
for m in ${@:-3 60}; do
  input="$work/long_${m}min.flac"
  python3 scripts/make_long_input.py "$input" "$m"
  input_mb=$(( $(stat -c %s "$input") / 1048576 ))
  for args in "${configs[@]}"; do
    # shellcheck disable=SC2086
    /usr/bin/time -v "$demix" -q inspect "$input" -o "$work/out" --force $args \
      2> "$work/time_${m}.txt"
    rss=$(grep "Maximum resident set size" "$work/time_${m}.txt" | awk '{print $NF}')
    wall=$(grep "Elapsed (wall clock)" "$work/time_${m}.txt" | awk '{print $NF}')
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.0f", s}' \
      "$work/time_${m}.txt")
    out_mb=$(( $(du -sb "$work/out/long_${m}min" | cut -f1) / 1048576 ))
    printf '%4s min stereo (FLAC input %5d MiB): peak RSS %4d MiB, wall %s, CPU %5s s, outputs %5d MiB [%s]\n' \
      "$m" "$input_mb" $((rss / 1024)) "$wall" "$cpu" "$out_mb" "$args"
    rm -rf "$work/out"
  done
  rm -f "$input"
done
