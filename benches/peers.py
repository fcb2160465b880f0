#!/usr/bin/env python3
"""demix side by side with the Python tools people use today, on the very same data.

Workloads (made by demix's `workload` example, so that anyone can reproduce them):
  W30   30 s mono at 44.1 kHz; V (n_fft 2048, hop 512) is 1025 x 2584
  W180  3 min stereo at 44.1 kHz; V (the channels' summed magnitudes) is 1025 x 15504

What is timed, each pair interleaved (A B A B ...) and summarised by medians, since the
machine is shared and noisy:

  nmf       one multiplicative-update iteration on W30, K = 32, for the IS, KL and Euclidean
            losses (or those of --losses, which also takes a β such as 0.5): demix's `Factorization::step` (median of 20 steps, in a fresh process per
            round) against scikit-learn's NMF(solver="mu", beta_loss=..., init="random",
            max_iter=100, tol=0) in float32 and float64 on the same V (fit time / 100, which
            includes the initialisation and the final cost: at most a few percent).
  stft      STFT and inverse STFT of W180 (both channels): demix's `Stft::forward` and
            `Stft::inverse` against librosa.stft and librosa.istft (median of 3 calls each).
  separate  the whole separation of W180 into K = 32 sources, 200 iterations, tol 0, the same
            loss and initialisation (NNDSVDA), soft masks of power 2, inverse STFT of every
            channel and a 16-bit WAV per source: `demix separate` (wall time of the process)
            against the librosa + scikit-learn script `separate_with_python` below (time from
            reading the WAV to the last file written, in its own process, imports excluded).
            Also the peak memory of each (maximum resident set size).
  supervised  supervised separation end to end at demix's defaults: templates learned from a
            15 s training clip of each of two instruments (`demix learn -k 16`, with all its
            defaults: Itakura-Saito from one start, KL templates beside), then a 30 s
            stereo mix of other notes separated with them (`demix separate --source ...`,
            pitch-shifted copies, multichannel Wiener filter) and a 16-bit WAV per source:
            the wall time of the three processes, against the supervised pipeline of
            scripts/compare_separation.py (scikit-learn's IS NMF with K = 16, NNDSVDA, 200
            iterations per clip; the activations on the mix with the templates fixed; masks
            of power 2 on each channel's STFT; one 16-bit WAV per source). The clips and the
            mix are synthesised here (two instruments of different harmonics, seeded).

Prints each round and then a summary of medians and ratios (peer time / demix time: above 1
means demix is faster). Not run by CI. Needs numpy, scipy, scikit-learn, librosa, soundfile,
and the release builds:

    cargo build --release --bin demix --example workload
    python3 benches/peers.py [--rounds 5] [--separate-rounds 3]
                             [--only nmf,stft,separate,supervised]
                             [--losses is,kl,euclidean] [--skip-f64]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

N_FFT, HOP, K = 2048, 512, 32
SKLEARN_LOSS = {"is": "itakura-saito", "kl": "kullback-leibler", "euclidean": "frobenius"}

ROOT = Path(__file__).resolve().parent.parent
# PEERS_DEMIX names another demix binary (an older build, to compare defaults).
DEMIX = Path(os.environ.get("PEERS_DEMIX", ROOT / "target" / "release" / "demix"))
WORKLOAD = ROOT / "target" / "release" / "examples" / "workload"


def sklearn_loss(loss):
    """scikit-learn's beta_loss for a demix loss name, or a β given as a number ("0.5")."""
    return SKLEARN_LOSS[loss] if loss in SKLEARN_LOSS else float(loss)


def separate_with_python(wav, out_dir, loss, iterations):
    """The librosa + scikit-learn separation a researcher writes: what `demix separate` does.

    Sum of the channels' STFT magnitudes, NMF with K components, one soft mask (power 2) per
    component applied to every channel's STFT, inverse STFT, one 16-bit WAV per component,
    named from the loudest to the quietest."""
    import librosa
    import numpy as np
    import soundfile as sf
    from sklearn.decomposition import NMF

    y, sr = sf.read(wav, dtype="float32", always_2d=True)
    y = np.ascontiguousarray(y.T)  # channels x samples
    x = librosa.stft(y, n_fft=N_FFT, hop_length=HOP)  # channels x bins x frames
    v = np.abs(x).sum(axis=0)
    model = NMF(n_components=K, solver="mu", beta_loss=sklearn_loss(loss), init="nndsvda",
                max_iter=iterations, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = model.fit_transform(v.T).T  # K x frames (librosa.decompose's orientation)
    w = model.components_.T  # bins x K
    # The masks' denominator: sum over components of (w_k h_k)^2 = (w^2) (h^2).
    w2, h2 = w * w, h * h
    denominator = np.maximum(w2 @ h2, np.finfo(np.float32).tiny)
    energy = (w2.sum(axis=0)) * (h2.sum(axis=1))
    order = np.argsort(-energy, kind="stable")
    width = len(str(K))
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, k in enumerate(order):
        mask = np.outer(w2[:, k], h2[k]) / denominator
        stem = librosa.istft(x * mask, hop_length=HOP, n_fft=N_FFT, length=y.shape[1])
        sf.write(out_dir / f"source{i + 1:0{width}d}.wav", stem.T, sr, subtype="PCM_16")


SUPERVISED_K = 16
SUPERVISED_SOURCES = ("reed", "bell")


def instrument(name, notes, seconds, seed):
    """A stereo instrument at 44.1 kHz playing random `notes` (MIDI), 0.25 to 0.75 s each:
    odd harmonics for the reed, all of them with a fast decay for the bell; seeded."""
    import numpy as np
    rng = np.random.default_rng(seed)
    sr = 44100
    out = np.zeros(int(seconds * sr))
    start = 0
    while True:
        length = int(rng.uniform(0.25, 0.75) * sr)
        if start + length > len(out):
            break
        f0 = 440.0 * 2 ** ((rng.choice(notes) - 69) / 12)
        t = np.arange(length) / sr
        if name == "reed":
            tone = sum(np.sin(2 * np.pi * n * f0 * t) / n ** 2 for n in range(1, 12, 2))
            envelope = np.minimum(1, t * 40) * np.minimum(1, (length - np.arange(length)) / 400)
        else:
            tone = sum(np.sin(2 * np.pi * n * f0 * t) / n for n in range(1, 9))
            envelope = np.exp(-t * 6) * np.minimum(1, t * 400)
        out[start:start + length] += 0.2 * tone * envelope
        start += length
    pan = 0.3 if name == "reed" else 0.7
    return np.stack([out * (1 - pan), out * pan], axis=1).astype(np.float32)


def make_supervised_data(data):
    """Training clips (15 s) of the two instruments and a 30 s mix of other notes."""
    import soundfile as sf
    if all((data / f"sup_{n}.wav").exists() for n in (*SUPERVISED_SOURCES, "mix")):
        return
    notes = {"reed": ([60, 62, 64, 67, 69, 72], [61, 63, 65, 66, 68, 70, 71]),
             "bell": ([72, 74, 76, 79, 81], [73, 75, 77, 78, 80, 82, 84])}
    mix = 0
    for i, name in enumerate(SUPERVISED_SOURCES):
        train, song = notes[name]
        sf.write(data / f"sup_{name}.wav", instrument(name, train, 15, 10 + i), 44100,
                 subtype="PCM_16")
        mix = mix + instrument(name, song, 30, 20 + i)
    sf.write(data / "sup_mix.wav", mix, 44100, subtype="PCM_16")


def supervised_with_python(data, out_dir):
    """The supervised pipeline of scripts/compare_separation.py, writing stereo stems."""
    import librosa
    import numpy as np
    import soundfile as sf
    from sklearn.decomposition import NMF, non_negative_factorization

    def magnitude(y):
        v = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
        return np.maximum(v, 1e-6 * v.max())

    templates = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in SUPERVISED_SOURCES:
            y, _ = sf.read(data / f"sup_{name}.wav", dtype="float32", always_2d=True)
            model = NMF(n_components=SUPERVISED_K, beta_loss="itakura-saito", solver="mu",
                        max_iter=200, init="nndsvda", random_state=0)
            model.fit(magnitude(y.mean(axis=1)).T)
            templates.append(model.components_)
        w = np.vstack(templates)
        y, sr = sf.read(data / "sup_mix.wav", dtype="float32", always_2d=True)
        y = np.ascontiguousarray(y.T)
        x = librosa.stft(y, n_fft=N_FFT, hop_length=HOP)
        h, _, _ = non_negative_factorization(
            magnitude(y.mean(axis=0)).T, H=w, n_components=w.shape[0], init="custom",
            update_H=False, solver="mu", beta_loss="itakura-saito", max_iter=200)
    k = SUPERVISED_K
    power = [((h[:, i * k:(i + 1) * k] @ w[i * k:(i + 1) * k]).T) ** 2
             for i in range(len(SUPERVISED_SOURCES))]
    total = sum(power) + 1e-30
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, p in zip(SUPERVISED_SOURCES, power):
        stem = librosa.istft(x * (p / total), hop_length=HOP, n_fft=N_FFT, length=y.shape[1])
        sf.write(out_dir / f"{name}.wav", stem.T, sr, subtype="PCM_16")


def bench_supervised(data, rounds, separate_args=()):
    make_supervised_data(data)
    times = {"demix": [], "python": []}
    rss = {"demix": [], "python": []}
    with tempfile.TemporaryDirectory(dir=data) as tmp:
        tmp = Path(tmp)
        for r in range(rounds):
            time.sleep(0.5)
            wall, peak, specs = 0.0, 0.0, []
            for name in SUPERVISED_SOURCES:
                npz = tmp / f"{name}.npz"
                w, p, _ = timed_child([DEMIX, "learn", data / f"sup_{name}.wav", "-k",
                                       SUPERVISED_K, "-o", npz, "--force", "-q"])
                wall, peak = wall + w, max(peak, p)
                specs += ["--source", npz]
            w, p, _ = timed_child([DEMIX, "separate", data / "sup_mix.wav", *specs, "-o",
                                   tmp / "demix", "--force", "-q", *separate_args])
            times["demix"].append(wall + w)
            rss["demix"].append(max(peak, p))
            assert len(list((tmp / "demix" / "sup_mix").glob("*.wav"))) == 2
            out = tmp / "python"
            _, peak, stdout = timed_child([
                sys.executable, __file__, "--supervised-with-python", data, out])
            times["python"].append(float(stdout))
            rss["python"].append(peak)
            assert len(list(out.glob("*.wav"))) == 2
            subprocess.run(["rm", "-rf", str(out), str(tmp / "demix")], check=True)
            print(f"supervised round {r + 1}: demix {times['demix'][-1]:.2f} s "
                  f"({rss['demix'][-1]:.0f} MiB), python {times['python'][-1]:.2f} s "
                  f"({rss['python'][-1]:.0f} MiB)", flush=True)
    return ({k: median(v) for k, v in times.items()}, {k: max(v) for k, v in rss.items()})


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def demix_run(cmd):
    """`run` for a timed demix child, after a pause: OpenBLAS's threads keep spinning for a
    moment after the last NumPy call and would otherwise take the cores from the child."""
    time.sleep(0.5)
    return run(cmd)


def timed_child(cmd):
    """(wall seconds, peak RSS in MiB, stdout) of `cmd`, run under /usr/bin/time -v."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *map(str, cmd)], capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr}")
    rss = next(int(line.split()[-1]) for line in proc.stderr.splitlines()
               if "Maximum resident set size" in line)
    return wall, rss / 1024, proc.stdout


def median(xs):
    return statistics.median(xs)


def make_data(data):
    needed = ["w30.wav", "w180.wav", "w30_v.npy", "w180_v.npy"]
    if all((data / n).exists() for n in needed):
        return
    print(f"writing the workloads to {data} ...", flush=True)
    run([str(WORKLOAD), "make", str(data)])


def bench_nmf(data, rounds, losses, skip_f64):
    import numpy as np
    from sklearn.decomposition import NMF

    v = np.load(data / "w30_v.npy")
    x32 = np.ascontiguousarray(v.T)  # frames x bins, as librosa.decompose passes it
    x64 = x32.astype(np.float64)
    results = {}
    for loss in losses:
        times = {"demix": [], "sklearn f32": [], "sklearn f64": []}
        for r in range(rounds):
            out = demix_run([str(WORKLOAD), "nmf", str(data / "w30_v.npy"), loss, "20"]).stdout
            times["demix"].append(float(out))
            for name, xd in [("sklearn f32", x32), ("sklearn f64", x64)]:
                if name == "sklearn f64" and skip_f64:
                    continue
                model = NMF(n_components=K, solver="mu", beta_loss=sklearn_loss(loss),
                            init="random", max_iter=100, tol=0, random_state=r)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    start = time.perf_counter()
                    model.fit(xd)
                    times[name].append((time.perf_counter() - start) / 100)
            print(f"nmf {loss:9} round {r + 1}: " + ", ".join(
                f"{k} {v[-1] * 1e3:.2f} ms" for k, v in times.items() if v), flush=True)
        results[loss] = {k: median(v) for k, v in times.items() if v}
    return results


def bench_stft(data, rounds):
    import librosa
    import numpy as np
    import soundfile as sf

    y, _ = sf.read(data / "w180.wav", dtype="float32", always_2d=True)
    y = np.ascontiguousarray(y.T)
    times = {"demix": [], "librosa": []}
    for r in range(rounds):
        out = demix_run([str(WORKLOAD), "stft", str(data / "w180.wav"), "3"]).stdout
        times["demix"].append(float(out))
        calls = []
        for _ in range(3):
            start = time.perf_counter()
            s = librosa.stft(y, n_fft=N_FFT, hop_length=HOP)
            librosa.istft(s, hop_length=HOP, n_fft=N_FFT, length=y.shape[1])
            calls.append(time.perf_counter() - start)
        times["librosa"].append(median(calls))
        print(f"stft round {r + 1}: demix {times['demix'][-1]:.3f} s, "
              f"librosa {times['librosa'][-1]:.3f} s", flush=True)
    return {k: median(v) for k, v in times.items()}


def bench_separate(data, rounds, loss):
    wav = data / "w180.wav"
    times = {"demix": [], "python": []}
    rss = {"demix": [], "python": []}
    with tempfile.TemporaryDirectory(dir=data) as tmp:
        tmp = Path(tmp)
        for r in range(rounds):
            out = tmp / "demix"
            wall, peak, _ = timed_child([
                DEMIX, "separate", wav, "-k", K, "--loss", loss, "--iter", 200, "--tol", 0,
                "--init", "nndsvda", "--mask-power", 2, "-o", out, "--force", "-q"])
            times["demix"].append(wall)
            rss["demix"].append(peak)
            assert len(list((out / "w180").glob("*.wav"))) == K
            subprocess.run(["rm", "-rf", str(out)], check=True)

            out = tmp / "python"
            _, peak, stdout = timed_child([
                sys.executable, __file__, "--separate-with-python", wav, out, loss])
            times["python"].append(float(stdout))
            rss["python"].append(peak)
            assert len(list(out.glob("*.wav"))) == K
            subprocess.run(["rm", "-rf", str(out)], check=True)
            print(f"separate round {r + 1}: demix {times['demix'][-1]:.2f} s "
                  f"({rss['demix'][-1]:.0f} MiB), python {times['python'][-1]:.2f} s "
                  f"({rss['python'][-1]:.0f} MiB)", flush=True)
    return ({k: median(v) for k, v in times.items()}, {k: max(v) for k, v in rss.items()})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="rounds of the nmf and stft pairs")
    p.add_argument("--separate-rounds", type=int, default=3)
    p.add_argument("--only", default="nmf,stft,separate,supervised")
    p.add_argument("--losses", default="is,kl,euclidean",
                   help="comma-separated: is, kl, euclidean or a β such as 0.5")
    p.add_argument("--separate-loss", default="kl", choices=["is", "kl", "euclidean"])
    p.add_argument("--skip-f64", action="store_true")
    p.add_argument("--supervised-args", default="",
                   help="more arguments of demix separate in the supervised workload, "
                        "space-separated (such as '--bands-per-octave 48')")
    p.add_argument("--data", type=Path, default=ROOT / "target" / "peers-data")
    p.add_argument("--separate-with-python", nargs=3, metavar=("WAV", "OUT", "LOSS"),
                   help=argparse.SUPPRESS)
    p.add_argument("--supervised-with-python", nargs=2, type=Path, metavar=("DATA", "OUT"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.supervised_with_python:
        import librosa  # noqa: F401
        import sklearn.decomposition  # noqa: F401
        import soundfile  # noqa: F401
        start = time.perf_counter()
        supervised_with_python(*args.supervised_with_python)
        print(time.perf_counter() - start)
        return

    if args.separate_with_python:
        wav, out, loss = args.separate_with_python
        # Imports first: the time is from reading the WAV to the last file written.
        import librosa  # noqa: F401
        import sklearn.decomposition  # noqa: F401
        import soundfile  # noqa: F401
        start = time.perf_counter()
        separate_with_python(Path(wav), Path(out), loss, 200)
        print(time.perf_counter() - start)
        return

    for exe in (DEMIX, WORKLOAD):
        if not exe.exists():
            sys.exit(f"{exe} is missing: cargo build --release --bin demix --example workload")
    args.data.mkdir(parents=True, exist_ok=True)
    make_data(args.data)
    only = args.only.split(",")
    import numpy
    import sklearn
    import librosa
    print(f"numpy {numpy.__version__}, scikit-learn {sklearn.__version__}, "
          f"librosa {librosa.__version__}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)

    summary = []
    if "nmf" in only:
        for loss, t in bench_nmf(args.data, args.rounds, args.losses.split(","),
                                 args.skip_f64).items():
            d = t["demix"]
            line = f"W30 {loss} iteration: demix {d * 1e3:.2f} ms"
            for peer in ("sklearn f32", "sklearn f64"):
                if peer in t:
                    line += f", {peer} {t[peer] * 1e3:.2f} ms ({t[peer] / d:.1f}x)"
            summary.append(line)
    if "stft" in only:
        t = bench_stft(args.data, args.rounds)
        summary.append(f"W180 STFT + inverse: demix {t['demix']:.3f} s, librosa "
                       f"{t['librosa']:.3f} s ({t['librosa'] / t['demix']:.1f}x)")
    if "separate" in only:
        t, rss = bench_separate(args.data, args.separate_rounds, args.separate_loss)
        summary.append(f"W180 separate (K {K}, {args.separate_loss}, 200 iterations): demix "
                       f"{t['demix']:.2f} s, librosa + scikit-learn {t['python']:.2f} s "
                       f"({t['python'] / t['demix']:.1f}x)")
        summary.append(f"W180 separate peak memory: demix {rss['demix']:.0f} MiB, "
                       f"librosa + scikit-learn {rss['python']:.0f} MiB")
    if "supervised" in only:
        t, rss = bench_supervised(args.data, args.separate_rounds, args.supervised_args.split())
        summary.append(f"supervised (learn 2 x 15 s, separate 30 s, defaults {args.supervised_args}): demix "
                       f"{t['demix']:.2f} s, librosa + scikit-learn {t['python']:.2f} s "
                       f"({t['python'] / t['demix']:.1f}x)")
        summary.append(f"supervised peak memory: demix {rss['demix']:.0f} MiB, "
                       f"librosa + scikit-learn {rss['python']:.0f} MiB")
    print(f"\nmedians (peer / demix; load average now {os.getloadavg()[0]:.2f}):")
    for line in summary:
        print("  " + line)


if __name__ == "__main__":
    main()
