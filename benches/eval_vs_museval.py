#!/usr/bin/env python3
"""Times `demix eval` against museval on a synthetic 3-minute stereo track with four stems.

    cargo build --release
    python3 benches/eval_vs_museval.py            # 2 runs of each, A B A B
    python3 benches/eval_vs_museval.py --runs 3 --seconds 60

Writes the references and estimates as float32 WAV files to a temporary folder, then runs,
alternately, `target/release/demix eval -r REF -e EST --json FILE` and the same evaluation in
Python: reading the files with scipy, `museval.evaluate(refs, ests, win=rate, hop=rate)` (what
`museval.eval_dir` runs, BSS Eval v4 with 1 s windows) and museval's per-source median. Each
timing includes reading the files. Prints every time, the median of each, their ratio, and the
largest difference between the two programs' figures. Not run by CI (it takes minutes).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types

import numpy as np
import scipy.io.wavfile
import scipy.signal

# museval's __init__ imports musdb, which needs ffmpeg at import time; nothing here uses it.
sys.modules.setdefault("musdb", types.ModuleType("musdb"))
import museval  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RATE = 44100
STEMS = ["bass", "drums", "other", "vocals"]


def make_track(folder, seconds, seed=1):
    """Four stereo stems of band-limited noise with envelopes and harmonic partials (each
    partial with a little frequency drift, as played notes have) over a white noise floor at
    the level of 16-bit dither, and estimates that leak 10-25 % of the other stems, with
    filtering and noise.

    Without the noise floor, a stem would have no energy at all in some bands and the delays
    of the references would be linearly dependent to machine precision; museval's own figures
    then change by dB when the input changes by 1e-9 (see the README)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    bands = [(30, 300), (200, 8000), (300, 4000), (150, 6000)]
    refs = []
    for k, (low, high) in enumerate(bands):
        sos = scipy.signal.butter(4, [low, high], btype="bandpass", fs=RATE, output="sos")
        noise = scipy.signal.sosfilt(sos, rng.standard_normal((2, n)), axis=1)
        f0 = [55.0, 0.0, 220.0, 330.0][k]
        tonal = np.zeros(n)
        if f0:
            drift = np.cumsum(1 + 0.002 * rng.standard_normal(n)) / RATE
            for h in range(1, 6):
                tonal += np.sin(2 * np.pi * f0 * h * drift) / h
        env = 0.6 + 0.4 * np.sin(2 * np.pi * (0.3 + 0.2 * k) * t + k)
        left = env * (noise[0] / noise[0].std() + tonal)
        right = env * (noise[1] / noise[1].std() + tonal)
        pan = 0.3 + 0.15 * k
        stem = 0.1 * np.stack([(1 - pan) * left, pan * right], axis=1)
        refs.append(stem + 1.5e-5 * rng.standard_normal((n, 2)))
    refs = np.stack(refs)
    ests = []
    for j in range(4):
        y = scipy.signal.lfilter([0.9, 0.1, -0.05], [1.0], refs[j], axis=0)
        for k in range(4):
            if k != j:
                y += (0.1 + 0.05 * k) * refs[k]
        y += 0.005 * rng.standard_normal(y.shape)
        ests.append(y)
    for sub, data in (("ref", refs), ("est", np.stack(ests))):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
        for name, x in zip(STEMS, data):
            scipy.io.wavfile.write(os.path.join(folder, sub, name + ".wav"), RATE, x.astype(np.float32))


def run_demix(folder):
    out = os.path.join(folder, "demix.json")
    started = time.perf_counter()
    subprocess.run(
        [os.path.join(ROOT, "target", "release", "demix"), "eval", "-q",
         "-r", os.path.join(folder, "ref"), "-e", os.path.join(folder, "est"), "--json", out],
        check=True,
    )
    elapsed = time.perf_counter() - started
    with open(out) as f:
        scores = json.load(f)["sources"]
    return elapsed, {name: scores[name] for name in STEMS}


def run_museval(folder):
    started = time.perf_counter()
    read = lambda sub: [  # noqa: E731
        scipy.io.wavfile.read(os.path.join(folder, sub, name + ".wav"))[1].astype(np.float64)
        for name in STEMS
    ]
    refs, ests = read("ref"), read("est")
    sdr, isr, sir, sar = museval.evaluate(refs, ests, win=RATE, hop=RATE)
    store = museval.TrackStore(track_name="bench", win=1, hop=1)
    for k, name in enumerate(STEMS):
        store.add_target(target_name=name, values={
            "SDR": sdr[k].tolist(), "SIR": sir[k].tolist(), "ISR": isr[k].tolist(), "SAR": sar[k].tolist()})
    scores = {
        t["name"]: {m.lower(): float(store.frames_agg([float(f["metrics"][m]) for f in t["frames"]]))
                    for m in ("SDR", "SIR", "SAR", "ISR")}
        for t in store.scores["targets"]
    }
    return time.perf_counter() - started, scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs of each program (default 2)")
    parser.add_argument("--seconds", type=float, default=180.0, help="track length (default 180)")
    parser.add_argument("--only-demix", action="store_true", help="time demix alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        make_track(folder, args.seconds)
        print(f"{args.seconds:g} s stereo at {RATE} Hz, {len(STEMS)} stems, in {folder}")
        times = {"demix": [], "museval": []}
        scores = {}
        for run in range(args.runs):
            for name, fn in (("demix", run_demix), ("museval", run_museval)):
                if name == "museval" and args.only_demix:
                    continue
                elapsed, scores[name] = fn(folder)
                times[name].append(elapsed)
                print(f"run {run + 1}: {name:8} {elapsed:8.2f} s", flush=True)
        demix = statistics.median(times["demix"])
        print(f"median: demix {demix:.2f} s", end="")
        if args.only_demix:
            print()
            return
        museval_time = statistics.median(times["museval"])
        print(f", museval {museval_time:.2f} s; demix takes {demix / museval_time:.3f} of "
              f"museval's time ({museval_time / demix:.0f}x faster)")
        worst = {
            m: max(abs(scores["demix"][s][m] - scores["museval"][s][m]) for s in STEMS)
            for m in ("sdr", "sir", "sar", "isr")
        }
        print("largest |demix - museval| per metric (dB): "
              + ", ".join(f"{m.upper()} {v:.2e}" for m, v in worst.items()))


if __name__ == "__main__":
    main()
