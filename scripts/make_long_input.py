"""A synthetic stereo 44.1 kHz 16-bit FLAC recording of any length, for the long-recording
measurements (scripts/long_recording.sh): six gated tones panned left and right over faint
noise, written a minute at a time.

    python3 scripts/make_long_input.py OUT.flac MINUTES

Needs numpy and soundfile.
"""

import sys

import numpy as np
import soundfile as sf


def main() -> None:
    path, minutes = sys.argv[1], float(sys.argv[2])
    rate = 44100
    total = int(minutes * 60 * rate)
    with sf.SoundFile(path, "w", rate, 2, format="FLAC", subtype="PCM_16") as f:
        rng = np.random.default_rng(0)
        chunk = 60 * rate
        for start in range(0, total, chunk):
            n = min(chunk, total - start)
            t = (start + np.arange(n)) / rate
            x = np.zeros((n, 2))
            for i, f0 in enumerate([110, 165, 220, 330, 440, 660]):
                gate = (np.sin(2 * np.pi * (0.3 + 0.17 * i) * t) > 0).astype(float)
                tone = 0.08 * gate * np.sin(2 * np.pi * f0 * t)
                x[:, 0] += tone * (i % 2 + 0.5)
                x[:, 1] += tone * (1.5 - i % 2)
            x += 0.003 * rng.standard_normal(x.shape)
            f.write(x)


if __name__ == "__main__":
    main()
