#!/usr/bin/env python3
"""Side-by-side separation quality: demix against the librosa + scikit-learn pipeline, on one
split of the generated corpus (scripts/make_corpus.py), per source and per instrument family.

Two modes:
- supervised (default): both pipelines learn K spectral templates per source from that source's
  training clip (train/<source>.flac), hold them fixed, fit the activations on the mixture, build
  soft masks and invert the STFT. demix: `demix learn` + `demix separate --source ...`.
- blind: no training audio; both fit K components to the mixture and group them into as many
  sources as the song has. demix: `demix separate -k K --sources S`. Estimates are matched to
  the true stems by the permutation with the best mean SIR (mir_eval's). The table also shows
  the mixture divided by S, the floor any separator must clear.

Both pipelines are scored with mir_eval's BSS Eval (bss_eval_sources) on the mono downmix of
the whole clip and timed (wall clock from decoding to writing, each pipeline once per song).

The Python pipeline is what a researcher writes today: librosa.stft of the mono downmix (n_fft
2048, hop 512, Hann), the magnitude floored at 1e-6 of its maximum, sklearn.decomposition.NMF
(multiplicative updates, NNDSVDA start; Itakura-Saito per source when supervised, KL when
blind), `non_negative_factorization(..., update_H=False)` on the mix with the templates fixed,
Wiener-style masks of power 2 on the complex STFT, librosa.istft. Blind grouping: k-means on
the MFCCs of the templates' mel spectra. demix runs its own defaults unless --demix-iter,
--demix-args, --learn-args or --separate-args say otherwise (write them with `=`:
`--separate-args=--no-spatial`); --iter is the Python pipeline's iterations only (until
2026-12-07 it was passed to demix too, so supervised runs fitted learned templates for 200
iterations instead of separate's defaults).

Usage (not run by CI; needs numpy, scipy, librosa, scikit-learn, mir_eval, soundfile):
    cargo build --release
    python3 scripts/make_corpus.py -o corpus
    python3 scripts/compare_separation.py --split tuning           # tune here
    python3 scripts/compare_separation.py --split validation       # report from here
    python3 scripts/compare_separation.py --split validation --mode blind
The peer's estimates are cached under <corpus>/<split>/.peer-cache (keyed by song, mode, K and
iterations), so trying demix options costs only demix's time; --no-cache recomputes them.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import librosa
import mir_eval
import numpy as np
import soundfile as sf
from sklearn.cluster import KMeans
from sklearn.decomposition import NMF, non_negative_factorization

N_FFT, HOP = 2048, 512
FLOOR = 1e-6  # of the spectrogram's maximum: keeps Itakura-Saito finite on digital silence


def mono(path):
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return y.mean(axis=1), sr


def magnitude(y):
    x = librosa.stft(y, n_fft=N_FFT, hop_length=HOP)
    v = np.abs(x)
    return x, np.maximum(v, FLOOR * v.max())


def masked(x, models, length):
    """Wiener-style soft masks of power 2 applied to the complex STFT, then inverted."""
    power = [m ** 2 for m in models]
    total = sum(power) + 1e-30
    return [librosa.istft(x * p / total, hop_length=HOP, length=length) for p in power]


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def python_supervised(song_dir, sources, k, iterations, loss="itakura-saito"):
    """Supervised NMF separation with librosa and scikit-learn. Returns mono estimates."""
    templates = []
    for source in sources:
        y, _ = mono(song_dir / "train" / f"{source}.flac")
        _, v = magnitude(y)
        model = NMF(n_components=k, beta_loss=loss, solver="mu",
                    max_iter=iterations, init="nndsvda", random_state=0)
        quiet(model.fit, v.T)  # rows are frames: components_ are spectral templates
        templates.append(model.components_)
    w = np.vstack(templates)  # (sources * k) x bins
    y, _ = mono(song_dir / "mix.flac")
    x, v = magnitude(y)
    h, _, _ = quiet(non_negative_factorization, v.T, H=w, n_components=w.shape[0], init="custom",
                    update_H=False, solver="mu", beta_loss=loss, max_iter=iterations)
    models = [(h[:, i * k:(i + 1) * k] @ w[i * k:(i + 1) * k]).T for i in range(len(sources))]
    return masked(x, models, len(y))


def python_blind(song_dir, n_sources, k, iterations, sr):
    """Blind NMF + k-means grouping of the templates by their MFCCs. Returns mono estimates."""
    y, _ = mono(song_dir / "mix.flac")
    x, v = magnitude(y)
    model = NMF(n_components=k, beta_loss="kullback-leibler", solver="mu", max_iter=iterations,
                init="nndsvda", random_state=0)
    h = quiet(model.fit_transform, v.T)  # frames x k
    w = model.components_  # k x bins
    mel = librosa.feature.melspectrogram(S=w.T ** 2, sr=sr, n_fft=N_FFT)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13)[1:].T  # k x 12
    labels = KMeans(n_clusters=n_sources, n_init=10, random_state=0).fit_predict(mfcc)
    models = [(h[:, labels == g] @ w[labels == g]).T for g in range(n_sources)]
    return masked(x, models, len(y))


def demix_run(binary, song_dir, sources, mode, k, iterations, args, workdir):
    """The same job with the demix CLI. Returns mono estimates."""
    out = workdir / "out"
    # demix's own iteration defaults unless --demix-iter says otherwise (its separate stops
    # fits of learned templates far sooner than the peer's 200).
    common = ["--iter", str(args.demix_iter)] if args.demix_iter else []
    common += args.demix_args.split()
    if mode == "supervised":
        specs = []
        for source in sources:
            learn = [binary, "-q", "learn", str(song_dir / "train" / f"{source}.flac"),
                     "-k", str(k), *common, *args.learn_args.split(),
                     *args.learn_args_for.get(source, "").split()]
            npz = learned(learn, workdir / f"{source}.npz", args.template_cache)
            specs += ["--source", f"{source}={npz}"]
        names = sources
    else:
        specs = ["-k", str(k), "--sources", str(len(sources))]
        names = [f"source{i + 1}" for i in range(len(sources))]
    subprocess.run([binary, "-q", "separate", str(song_dir / "mix.flac"), *specs, "--float32",
                    "--force", "-o", str(out), *common, *args.separate_args.split()], check=True)
    return [mono(out / "mix" / f"{name}.wav")[0] for name in names]


def learned(command, npz, cache):
    """Runs `demix learn` into `npz`, or takes the templates an identical command (same
    binary, same build, same DEMIX_* environment) learned before from `cache`."""
    if cache is None:
        subprocess.run([*command, "-o", str(npz), "--force"], check=True)
        return npz
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("DEMIX_"))
    stamp = repr((command, Path(command[0]).stat().st_mtime_ns, env))
    cached = cache / (hashlib.sha256(stamp.encode()).hexdigest()[:24] + ".npz")
    if not cached.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([*command, "-o", str(npz), "--force"], check=True)
        shutil.copyfile(npz, cached)
    return cached


def score(song_dir, sources, estimates, permute):
    """BSS Eval of mono estimates against the mono true stems; rows in the stems' order."""
    refs = np.stack([mono(song_dir / f"{s}.flac")[0] for s in sources])
    est = np.stack([e[: refs.shape[1]] for e in estimates])
    sdr, sir, sar, perm = quiet(mir_eval.separation.bss_eval_sources, refs, est,
                                compute_permutation=permute)
    return [dict(sdr=float(sdr[i]), sir=float(sir[i]), sar=float(sar[i]),
                 estimate=int(perm[i])) for i in range(len(sources))]


def peer(song_dir, meta, mode, k, iterations, cache, loss="itakura-saito"):
    """The Python pipeline's estimates and time, from the cache when it has them."""
    sources = meta["sources"]
    tag = "" if loss == "itakura-saito" or mode != "supervised" else f"-{loss}"
    cached = cache / f"{song_dir.name}-{mode}-k{k}-i{iterations}{tag}.npz" if cache else None
    if cached and cached.exists():
        data = np.load(cached)
        return list(data["estimates"]), float(data["seconds"])
    t = time.perf_counter()
    if mode == "supervised":
        est = python_supervised(song_dir, sources, k, iterations, loss)
    else:
        est = python_blind(song_dir, len(sources), k, iterations, meta["sr"])
    seconds = time.perf_counter() - t
    if cached:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cached, estimates=np.stack(est), seconds=seconds)
    return est, seconds


def load_songs(args):
    songs = []
    for corpus in [args.corpus, *args.also]:
        root = corpus / args.split
        if not (root / "index.json").exists():
            sys.exit(f"{root}: no corpus here (python3 scripts/make_corpus.py -o {corpus})")
        index = json.loads((root / "index.json").read_text())
        songs += [root / "songs" / s["name"] for s in index["songs"]]
    if args.songs:
        songs = [s for s in songs if any(p in s.name for p in args.songs.split(","))]
    if args.limit:
        songs = songs[: args.limit]
    return songs


def median(values):
    return float(np.median(values)) if values else float("nan")


def summary(rows, pipelines, key):
    """Per group of `key`: count, and per pipeline the median SDR / SIR / SAR and worst SDR."""
    groups = sorted({r[key] for r in rows})
    out = []
    for g in groups + ["all"]:
        sel = [r for r in rows if g == "all" or r[key] == g]
        cells = {}
        for p in pipelines:
            vals = [r[p] for r in sel]
            cells[p] = dict(sdr=median([v["sdr"] for v in vals]),
                            sir=median([v["sir"] for v in vals]),
                            sar=median([v["sar"] for v in vals]),
                            worst=min(v["sdr"] for v in vals))
        out.append(dict(group=g, n=len(sel), **cells))
    return out


def print_table(title, table, pipelines, markdown):
    head = " | ".join(f"{p} SDR / SIR / SAR (worst SDR)" for p in pipelines)
    if markdown:
        print(f"\n| {title} | n | {head} |")
        print("|---|---|" + "---|" * len(pipelines))
    else:
        print(f"\n{title:12} {'n':>3} | {head}")
    for row in table:
        cells = [f"{row[p]['sdr']:6.2f} / {row[p]['sir']:6.2f} / {row[p]['sar']:6.2f} "
                 f"({row[p]['worst']:6.2f})" for p in pipelines]
        name = f"**{row['group']}**" if markdown and row["group"] == "all" else row["group"]
        if markdown:
            print(f"| {name} | {row['n']} | " + " | ".join(cells) + " |")
        else:
            print(f"{name:12} {row['n']:3} | " + " | ".join(cells))


def main():
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=root / "corpus")
    ap.add_argument("--also", type=Path, action="append", default=[], metavar="CORPUS",
                    help="another corpus folder whose songs of the split are added (e.g. "
                         "corpus-more, the 40 more tuning songs of make_corpus.py --first 40)")
    ap.add_argument("--split", default="tuning", choices=["tuning", "validation"])
    ap.add_argument("--mode", default="supervised", choices=["supervised", "blind"])
    ap.add_argument("--binary", default=str(root / "target" / "release" / "demix"))
    ap.add_argument("-k", type=lambda v: v if v == "auto" else int(v), default=None,
                    help="templates per source (supervised, default 16) or components in all "
                         "(blind, default 4 per source; auto: demix chooses per song with "
                         "-k auto, the peer keeps the default)")
    ap.add_argument("--iter", type=int, default=200, help="the Python pipeline's iterations")
    ap.add_argument("--demix-iter", type=int, default=None,
                    help="demix's --iter for learn and separate (default: demix's own defaults)")
    ap.add_argument("--demix-args", default="", help="extra options for demix learn and separate")
    ap.add_argument("--separate-args", default="", help="extra options for demix separate only")
    ap.add_argument("--learn-args", default="", help="extra options for demix learn only")
    ap.add_argument("--learn-args-for", action="append", default=[], metavar="SOURCE=ARGS",
                    help="extra options for demix learn of the sources named SOURCE only "
                         "(e.g. --learn-args-for='drums=--frames 6'); repeatable")
    ap.add_argument("--songs", help="only songs whose names contain one of these (comma-separated)")
    ap.add_argument("--limit", type=int, help="only the first N songs")
    ap.add_argument("--rows", action="store_true", help="also print every source's row")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    ap.add_argument("--json", type=Path, help="also write every row as JSON")
    ap.add_argument("--no-cache", action="store_true", help="recompute the peer's estimates")
    ap.add_argument("--skip-peer", action="store_true", help="demix only (faster tuning)")
    ap.add_argument("--peer-loss", choices=["itakura-saito", "kullback-leibler"],
                    default="itakura-saito",
                    help="the supervised pipeline's loss (default: Itakura-Saito, the issue's "
                         "pipeline; kullback-leibler gives a stronger peer)")
    ap.add_argument("--template-cache", type=Path,
                    help="keep demix's learned templates here and reuse them when the learn "
                         "command and the binary are the same (faster sweeps of separate's "
                         "options; demix's time then leaves learning out)")
    args = ap.parse_args()
    if any("=" not in a for a in args.learn_args_for):
        ap.error("--learn-args-for takes SOURCE=ARGS")
    args.learn_args_for = dict(a.split("=", 1) for a in args.learn_args_for)
    songs = load_songs(args)
    pipelines = (["demix"] if args.skip_peer else ["python", "demix"])
    if args.mode == "blind":
        pipelines.append("mix/S")

    rows, times = [], {p: 0.0 for p in pipelines}
    scoring = ProcessPoolExecutor(max_workers=1)  # BSS Eval of one song while the next runs
    pending = []
    for song_dir in songs:
        meta = json.loads((song_dir / "meta.json").read_text())
        sources = meta["sources"]
        k = args.k or (16 if args.mode == "supervised" else 4 * len(sources))
        demix_k = k
        if k == "auto":
            # demix chooses K itself; the peer keeps the default.
            k = 16 if args.mode == "supervised" else 4 * len(sources)
        estimates = {}
        if "python" in pipelines:
            # Each corpus keeps its own peer cache: <corpus>/<split>/.peer-cache.
            cache = None if args.no_cache else song_dir.parent.parent / ".peer-cache"
            estimates["python"], seconds = peer(
                song_dir, meta, args.mode, k, args.iter, cache, args.peer_loss)
            times["python"] += seconds
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            estimates["demix"] = demix_run(args.binary, song_dir, sources, args.mode, demix_k,
                                           args.iter, args, Path(tmp))
            times["demix"] += time.perf_counter() - t
        if "mix/S" in pipelines:
            y, _ = mono(song_dir / "mix.flac")
            estimates["mix/S"] = [y / len(sources)] * len(sources)
        permute = args.mode == "blind"
        jobs = {p: scoring.submit(score, song_dir, sources, e, permute and p != "mix/S")
                for p, e in estimates.items()}
        pending.append((song_dir, meta, jobs))
        print(f"{song_dir.name}: done", file=sys.stderr)
    for song_dir, meta, jobs in pending:
        scores = {p: j.result() for p, j in jobs.items()}
        for i, source in enumerate(meta["sources"]):
            row = dict(song=song_dir.name, source=source, family=meta["families"][source],
                       soundfont=meta["soundfont"],
                       room="reverb" if meta["reverb_rt60"] > 0 else "dry")
            row.update({p: scores[p][i] for p in pipelines})
            rows.append(row)
    scoring.shutdown()

    if args.rows:
        print(f"{'song':34} {'source':8} | " + " | ".join(f"{p + ' SDR/SIR/SAR':>22}" for p in pipelines))
        for r in rows:
            cells = [f"{r[p]['sdr']:6.2f} {r[p]['sir']:6.2f} {r[p]['sar']:6.2f}" for p in pipelines]
            print(f"{r['song']:34} {r['source']:8} | " + " | ".join(f"{c:>22}" for c in cells))
    print(f"\n{args.split} split, {args.mode}, {len(songs)} songs, {len(rows)} sources; medians "
          f"in dB, worst SDR in brackets")
    print_table("family", summary(rows, pipelines, "family"), pipelines, args.markdown)
    print_table("sound font", summary(rows, pipelines, "soundfont"), pipelines, args.markdown)
    print_table("room", summary(rows, pipelines, "room"), pipelines, args.markdown)
    song_medians = {p: [median([r[p]["sdr"] for r in rows if r["song"] == s.name]) for s in songs]
                    for p in pipelines}
    for p in pipelines:
        worst = int(np.argmin(song_medians[p]))
        print(f"{p:7}: median SDR {median([r[p]['sdr'] for r in rows]):.2f} dB; worst song "
              f"{songs[worst].name} at {song_medians[p][worst]:.2f} dB; "
              + (f"{times[p]:.1f} s in all" if p in times and p != "mix/S" else ""))
    if "python" in pipelines:
        print(f"demix - python: median of the per-source differences "
              f"{median([r['demix']['sdr'] - r['python']['sdr'] for r in rows]):+.2f} dB")
    if args.json:
        args.json.write_text(json.dumps(dict(args={k: str(v) for k, v in vars(args).items()},
                                             rows=rows, seconds=times), indent=1))


if __name__ == "__main__":
    main()
