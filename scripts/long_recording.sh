#!/usr/bin/env bash
# Time and peak memory of `demix separate` (or `demix inspect`) on long recordings: makes
# synthetic stereo 44.1 kHz 16-bit FLAC files of the given lengths (minutes; default 3 60 600)
# and runs the command on each under /usr/bin/time -v, printing one line per run. Not run by CI.
#
#   bash scripts/long_recording.sh 3 60 600
#   DEMIX_ARGS="-k 32" OUT_FORMAT=--float32 bash scripts/long_recording.sh 3
#   COMMAND=inspect bash scripts/long_recording.sh 3 60
#
# DEMIX        the binary (default ./target/release/demix; copy it elsewhere to rebuild meanwhile)
# COMMAND      separate (default) or inspect
# DEMIX_ARGS   its options; several sets separated by ';' run one after the other. Default for
#              separate "-k 32 --sources 2" (32 components fitted, written as 2 stems, since 32
#              stems of 10 hours would fill the disk; memory is the fit's), for inspect
#              "-k 4;--notes A1-C7" (the default free components, then a piano roll of 75 note
#              templates)
# OUT_FORMAT   separate's output option (default --flac, since a 10-hour stem is past the 4 GiB
#              of a WAV file; empty for 16-bit WAV)
# WORK         folder for the inputs and outputs (default: a temporary folder, removed at exit)
#
# Needs python3 with numpy and soundfile (scripts/make_long_input.py encodes the FLAC inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
demix=${DEMIX:-./target/release/demix}
command=${COMMAND:-separate}
case "$command" in
  separate) default_args="-k 32 --sources 2"; extra=${OUT_FORMAT---flac} ;;
  inspect) default_args="-k 4;--notes A1-C7"; extra="" ;;
  *) echo "COMMAND is separate or inspect, not $command" >&2; exit 2 ;;
esac
IFS=';' read -r -a configs <<< "${DEMIX_ARGS:-$default_args}"
if [[ -n "${WORK:-}" ]]; then
  work=$WORK
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
for m in ${@:-3 60 600}; do
  input="$work/long_${m}min.flac"
  python3 scripts/make_long_input.py "$input" "$m"
  input_mb=$(( $(stat -c %s "$input") / 1048576 ))
  for args in "${configs[@]}"; do
    # shellcheck disable=SC2086
    /usr/bin/time -v "$demix" -q "$command" "$input" -o "$work/out" --force $args $extra \
      2> "$work/time_${m}.txt"
    rss=$(grep "Maximum resident set size" "$work/time_${m}.txt" | awk '{print $NF}')
    wall=$(grep "Elapsed (wall clock)" "$work/time_${m}.txt" | awk '{print $NF}')
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.0f", s}' \
      "$work/time_${m}.txt")
    out_mb=$(( $(du -sb "$work/out/long_${m}min" | cut -f1) / 1048576 ))
    printf '%4s min stereo (FLAC input %5d MiB): %s peak RSS %4d MiB, wall %s, CPU %5s s, outputs %5d MiB [%s%s]\n' \
      "$m" "$input_mb" "$command" $((rss / 1024)) "$wall" "$cpu" "$out_mb" "$args" "${extra:+ $extra}"
    rm -rf "$work/out"
  done
  rm -f "$input"
done
