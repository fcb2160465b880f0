#!/usr/bin/env bash
# Time and peak memory of `demix separate` on long recordings: makes synthetic stereo 44.1 kHz
# 16-bit FLAC files of the given lengths (minutes; default 3 60 600) and separates each under
# /usr/bin/time -v, printing one line per length. Not run by CI.
#
#   bash scripts/long_recording.sh 3 60 600
#   DEMIX_ARGS="-k 32" OUT_FORMAT=--float32 bash scripts/long_recording.sh 3
#
# DEMIX        the binary (default ./target/release/demix; copy it elsewhere to rebuild meanwhile)
# DEMIX_ARGS   separation options (default "-k 32 --sources 2": 32 components fitted, written
#              as 2 stems, since 32 stems of 10 hours would fill the disk; memory is the fit's)
# OUT_FORMAT   output option (default --flac; a 10-hour stem is past the 4 GiB of a WAV file)
# WORK         folder for the inputs and outputs (default: a temporary folder, removed at exit)
#
# Needs python3 with numpy and soundfile (scripts/make_long_input.py encodes the FLAC inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
demix=${DEMIX:-./target/release/demix}
args=${DEMIX_ARGS:--k 32 --sources 2}
out_format=${OUT_FORMAT:---flac}
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
  # shellcheck disable=SC2086
  /usr/bin/time -v "$demix" -q separate "$input" -o "$work/out" --force $args $out_format \
    2> "$work/time_${m}.txt"
  rss=$(grep "Maximum resident set size" "$work/time_${m}.txt" | awk '{print $NF}')
  wall=$(grep "Elapsed (wall clock)" "$work/time_${m}.txt" | awk '{print $NF}')
  input_mb=$(( $(stat -c %s "$input") / 1048576 ))
  out_mb=$(( $(du -sb "$work/out/long_${m}min" | cut -f1) / 1048576 ))
  printf '%4s min stereo (FLAC input %5d MiB): peak RSS %4d MiB, wall %s, stems %5d MiB [%s %s]\n' \
    "$m" "$input_mb" $((rss / 1024)) "$wall" "$out_mb" "$args" "$out_format"
  rm -rf "$work/out" "$input"
done
