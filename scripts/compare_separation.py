#!/usr/bin/env python3
"""Side-by-side separation quality: demix against the librosa + scikit-learn pipeline.

For every song of the development mixes (../shared/dev-mixes, see its README), both pipelines
learn K spectral templates per source from that source's training clip (train/<source>.flac),
hold them fixed, fit the activations on the mixture, build soft masks and invert the STFT. Both
are scored with mir_eval's BSS Eval (bss_eval_sources) on the mono downmix of the whole clip,
as the dev-mixes README prescribes, and timed (wall clock, everything from decoding to
writing; each pipeline runs once per song, alternating).

The Python pipeline is what a researcher writes today: librosa.stft (n_fft 2048, hop 512,
Hann), sklearn.decomposition.NMF with the Itakura-Saito loss and the multiplicative-update
solver, non_negative_factorization with the templates fixed (update_H=False), Wiener-style
masks with power 2, librosa.istft. demix runs its own defaults unless --demix-args says
otherwise.

Usage (not run by CI; needs numpy, scipy, librosa, scikit-learn, mir_eval, soundfile):
    cargo build --release
    python3 scripts/compare_separation.py [--dev-mixes ../shared/dev-mixes] [-k 16]
"""

import argparse
import json
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import librosa
import mir_eval
import numpy as np
import soundfile as sf
from sklearn.decomposition import NMF, non_negative_factorization

SONGS = ["s00_piano_bass", "s02_piano_bass_drums", "s04_voice_piano"]
N_FFT, HOP = 2048, 512
EPS = 1e-10  # Itakura-Saito needs strictly positive spectrograms


def mono(path):
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    return y.mean(axis=1), sr


def python_pipeline(song_dir, sources, k, iterations):
    """Supervised NMF separation with librosa and scikit-learn. Returns mono estimates."""
    templates = []
    for source in sources:
        y, _ = mono(song_dir / "train" / f"{source}.flac")
        s = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)) + EPS
        model = NMF(n_components=k, beta_loss="itakura-saito", solver="mu",
                    max_iter=iterations, init="nndsvda", random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(s.T)  # rows are frames: components_ are spectral templates
        templates.append(model.components_)
    w = np.vstack(templates)  # (sources * k) x bins
    y, _ = mono(song_dir / "mix.flac")
    x = librosa.stft(y, n_fft=N_FFT, hop_length=HOP)
    v = np.abs(x) + EPS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h, _, _ = non_negative_factorization(
            v.T, H=w, n_components=w.shape[0], init="custom", update_H=False,
            solver="mu", beta_loss="itakura-saito", max_iter=iterations)
    models = [h[:, i * k:(i + 1) * k] @ w[i * k:(i + 1) * k] for i in range(len(sources))]
    power = [m.T ** 2 for m in models]
    total = sum(power) + 1e-30
    return [librosa.istft(x * p / total, hop_length=HOP, length=len(y)) for p in power]


def demix_pipeline(binary, song_dir, sources, k, iterations, extra, extra_separate, extra_learn,
                   workdir):
    """The same job with the demix CLI. Returns mono estimates."""
    specs = []
    for source in sources:
        npz = workdir / f"{source}.npz"
        subprocess.run([binary, "-q", "learn", str(song_dir / "train" / f"{source}.flac"),
                        "-k", str(k), "--iter", str(iterations), "-o", str(npz), "--force",
                        *extra, *extra_learn], check=True)
        specs += ["--source", f"{source}={npz}"]
    out = workdir / "out"
    subprocess.run([binary, "-q", "separate", str(song_dir / "mix.flac"), *specs,
                    "--iter", str(iterations), "--float32", "--force", "-o", str(out), *extra,
                    *extra_separate],
                   check=True)
    return [mono(out / "mix" / f"{source}.wav")[0] for source in sources]


def score(song_dir, sources, estimates):
    refs = np.stack([mono(song_dir / f"{s}.flac")[0] for s in sources])
    est = np.stack([e[: refs.shape[1]] for e in estimates])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(refs, est, compute_permutation=False)
    return sdr, sir, sar


def main():
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev-mixes", type=Path, default=root.parent / "shared" / "dev-mixes")
    parser.add_argument("--binary", default=str(root / "target" / "release" / "demix"))
    parser.add_argument("-k", type=int, default=16, help="templates per source")
    parser.add_argument("--iter", type=int, default=200)
    parser.add_argument("--demix-args", default="", help="extra options for demix learn and separate")
    parser.add_argument("--separate-args", default="", help="extra options for demix separate only")
    parser.add_argument("--learn-args", default="", help="extra options for demix learn only")
    parser.add_argument("--json", type=Path, help="also write the table as JSON")
    parser.add_argument("--cache", type=Path,
                        help="keep the Python pipeline's estimates here and reuse them (for "
                             "trying demix options; the Python time is then that of the first run)")
    args = parser.parse_args()
    extra = args.demix_args.split()

    rows, times = [], {"python": 0.0, "demix": 0.0}
    for song in SONGS:
        song_dir = args.dev_mixes / song
        sources = json.loads((song_dir / "meta.json").read_text())["sources"]
        with tempfile.TemporaryDirectory() as tmp:
            cached = args.cache and args.cache / f"{song}-k{args.k}-i{args.iter}.npz"
            if cached and cached.exists():
                data = np.load(cached)
                py = list(data["estimates"])
                times["python"] += float(data["seconds"])
            else:
                t = time.perf_counter()
                py = python_pipeline(song_dir, sources, args.k, args.iter)
                seconds = time.perf_counter() - t
                times["python"] += seconds
                if cached:
                    args.cache.mkdir(parents=True, exist_ok=True)
                    np.savez(cached, estimates=np.stack(py), seconds=seconds)
            t = time.perf_counter()
            dm = demix_pipeline(args.binary, song_dir, sources, args.k, args.iter, extra,
                                args.separate_args.split(), args.learn_args.split(), Path(tmp))
            times["demix"] += time.perf_counter() - t
        for name, est in (("python", py), ("demix", dm)):
            sdr, sir, sar = score(song_dir, sources, est)
            for i, source in enumerate(sources):
                rows.append(dict(song=song, source=source, pipeline=name,
                                 sdr=float(sdr[i]), sir=float(sir[i]), sar=float(sar[i])))

    print(f"{'song':22} {'source':7} | {'python SDR/SIR/SAR':>20} | {'demix SDR/SIR/SAR':>20}")
    for song in SONGS:
        for source in dict.fromkeys(r["source"] for r in rows if r["song"] == song):
            cells = []
            for name in ("python", "demix"):
                r = next(r for r in rows if (r["song"], r["source"], r["pipeline"]) == (song, source, name))
                cells.append(f"{r['sdr']:6.2f} {r['sir']:6.2f} {r['sar']:6.2f}")
            print(f"{song:22} {source:7} | {cells[0]:>20} | {cells[1]:>20}")
    for name in ("python", "demix"):
        med = {m: float(np.median([r[m] for r in rows if r["pipeline"] == name])) for m in ("sdr", "sir", "sar")}
        print(f"median {name:7}: SDR {med['sdr']:.2f} dB, SIR {med['sir']:.2f} dB, SAR {med['sar']:.2f} dB,"
              f" {times[name]:.1f} s for the three songs")
    if args.json:
        args.json.write_text(json.dumps(dict(rows=rows, seconds=times), indent=1))


if __name__ == "__main__":
    main()
