#!/usr/bin/env bash
# Peak memory of `demix separate` on long recordings: makes synthetic stereo 44.1 kHz 16-bit
# WAV files of the given lengths (minutes; default 3 and 60) and runs demix on each under
# /usr/bin/time -v. Needs python3 with numpy and soundfile, and a release build
# (cargo build --release). Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for minutes in "${@:-3 60}"; do
  for m in $minutes; do
    python3 - "$work/long_${m}min.wav" "$m" <<'PY'
import sys
import numpy as np
import soundfile as sf
path, minutes = sys.argv[1], float(sys.argv[2])
rate = 44100
with sf.SoundFile(path, "w", rate, 2, subtype="PCM_16") as f:
    rng = np.random.default_rng(0)
    chunk = 60 * rate
    for start in range(0, int(minutes * 60 * rate), chunk):
        t = (start + np.arange(chunk)) / rate
        x = np.zeros((chunk, 2))
        for i, f0 in enumerate([110, 165, 220, 330, 440, 660]):
            gate = (np.sin(2 * np.pi * (0.3 + 0.17 * i) * t) > 0).astype(float)
            tone = 0.08 * gate * np.sin(2 * np.pi * f0 * t)
            x[:, 0] += tone * (i % 2 + 0.5)
            x[:, 1] += tone * (1.5 - i % 2)
        x += 0.003 * rng.standard_normal(x.shape)
        f.write(x)
PY
    /usr/bin/time -v ./target/release/demix -q separate "$work/long_${m}min.wav" -o "$work/out" --force \
      2> "$work/time.txt"
    rss=$(grep "Maximum resident set size" "$work/time.txt" | awk '{print $NF}')
    wall=$(grep "Elapsed (wall clock)" "$work/time.txt" | awk '{print $NF}')
    input_mb=$(( $(stat -c %s "$work/long_${m}min.wav") / 1048576 ))
    printf '%4s min stereo: peak RSS %6d MiB (16-bit input file %5d MiB, decoded f32 %5d MiB), wall %s\n' \
      "$m" $((rss / 1024)) "$input_mb" $((input_mb * 2)) "$wall"
    rm -rf "$work/out" "$work/long_${m}min.wav"
  done
done
