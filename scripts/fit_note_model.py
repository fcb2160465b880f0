#!/usr/bin/env python3
"""Fit the note model of `demix inspect --notes` on the tuning split and print its weights.

With one harmonic template per semitone, a struck note lights up more than its own row; the
note model decides which candidate notes (the activation segments src/inspect/transcribe.rs
finds down to 0.05 of the loudest activation) are notes. This script:

1. runs `demix inspect --notes A0-C8` on every solo piece of a split (the activations are
   cached in --cache, keyed by piece and the extra demix options),
2. computes the ten features of every candidate exactly as src/inspect/note_model.rs does,
3. labels each candidate with mir_eval's onset matching (50 ms) against the piece's MIDI,
4. fits a logistic regression (scikit-learn, C = 1), reports its median onset F under 4-fold
   cross-validation by piece for several confidence thresholds, and prints the weights fitted
   on all pieces as the Rust constants of note_model.rs.

Only ever run it on the tuning split: the validation split is for reporting.
Development only: not run by CI.

Usage, from the repository root after `cargo build --release` and make_corpus.py:
    python3 scripts/fit_note_model.py --split tuning
"""
import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_transcription as ct  # noqa: E402  (the segments copy, MIDI reading, scoring)

# Windows of the features, in seconds (note_model.rs).
BACK_S, LOOK_S, LOCAL_S, SUSTAIN_S, PRE_S = 0.05, 0.2, 2.0, 0.35, 0.07
BELOW, ABOVE = (12, 19, 24, 28, 31), (12, 19)
FLOOR = 1e-4
NAMES = ["level", "concurrent", "local", "own", "sustain", "pre", "neighbour", "below",
         "above", "duration"]
CANDIDATE_LEVEL = 0.05


def frames(seconds, frame_s):
    return max(1, math.floor(seconds / frame_s + 0.5))


def features(h, frame_s):
    """(row, start, end, feature vector) of every candidate of activations h (notes, frames)."""
    rows, t_len = h.shape
    g = h.max()
    back, look, local = frames(BACK_S, frame_s), frames(LOOK_S, frame_s), frames(LOCAL_S, frame_s)
    sustain, pre_n = frames(SUSTAIN_S, frame_s), frames(PRE_S, frame_s)
    fm = h.max(axis=0)
    out = []
    for j in range(rows):
        row = h[j]
        own = row.max()
        for s, e in ct.segments(row, g, frame_s, min_level=CANDIDATE_LEVEL):
            pk = row[s:s + look].max()
            if not pk > 0:
                continue
            a, b = max(s - back, 0), s + look
            conc = fm[a:b].max()
            loc = fm[max(s - local, 0):s + local].max()
            sus = row[s:s + sustain].mean() / pk
            pre = row[max(s - pre_n, 0):s + 1].min() / pk

            def related(offsets):
                v = [h[jj, a:b].max() for jj in offsets if 0 <= jj < rows]
                return max(v, default=0.0) / pk

            nb = related((j - 1, j + 1, j - 2, j + 2))
            below = related([j - r for r in BELOW])
            above = related([j + r for r in ABOVE])
            lg = lambda v: math.log(max(v, FLOOR))
            x = [lg(pk / g), lg(pk / conc), lg(pk / loc), lg(pk / own), sus, pre, lg(nb),
                 lg(below), lg(above), lg((e - s) * frame_s)]
            out.append((j, s, e, x))
    return out


def label(reference, cands, frame_s, low):
    """1 for every candidate mir_eval matches to a reference note (onset within 50 ms)."""
    import mir_eval
    if not cands:
        return []
    hz = lambda m: 440.0 * 2 ** ((np.asarray(m, dtype=float) - 69) / 12)
    ri = np.array([[a, b] for a, b, _ in reference])
    ei = np.array([[s * frame_s, max(e * frame_s, s * frame_s + 1e-3)] for _, s, e, _ in cands])
    m = mir_eval.transcription.match_notes(
        ri, hz([p for _, _, p in reference]), ei, hz([low + j for j, _, _, _ in cands]),
        onset_tolerance=0.05, offset_ratio=None)
    matched = {j for _, j in m}
    return [int(i in matched) for i in range(len(cands))]


def activations(path, extra, binary, cache):
    key = hashlib.sha1(json.dumps([os.path.abspath(path), extra]).encode()).hexdigest()[:16]
    cached = os.path.join(cache, key + ".npz")
    if os.path.exists(cached):
        z = np.load(cached)
        return z["h"], float(z["frame_s"])
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([binary, "-q", "inspect", path, "-o", os.path.join(tmp, "out"),
                        "--notes", "A0-C8"] + extra, check=True)
        stem = os.path.splitext(os.path.basename(path))[0]
        h = np.load(os.path.join(tmp, "out", stem, "H.npy"))
        t = np.load(os.path.join(tmp, "out", stem, "time_s.npy"))
    os.makedirs(cache, exist_ok=True)
    np.savez(cached, h=h, frame_s=t[1] - t[0])
    return h, t[1] - t[0]


def main():
    from sklearn.linear_model import LogisticRegression
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--corpus", default=os.path.join(here, "..", "corpus"))
    ap.add_argument("--split", default="tuning", choices=["tuning"],
                    help="the tuning split only: the validation split is for reporting")
    ap.add_argument("--binary", default=ct.DEMIX)
    ap.add_argument("--demix-args", default="", help="extra options for demix inspect")
    ap.add_argument("--cache", default=None, help="activation cache (default CORPUS/.note-cache)")
    args = ap.parse_args()
    if args.split != "tuning":
        print("warning: the note model is fitted on the tuning split only", file=sys.stderr)
    cache = args.cache or os.path.join(args.corpus, ".note-cache")
    root = os.path.join(args.corpus, args.split)
    index = json.load(open(os.path.join(root, "index.json")))
    pieces = []
    for p in index["solo"]:
        folder = os.path.join(root, "solo", p["name"])
        h, frame_s = activations(os.path.join(folder, "mix.flac"), args.demix_args.split(),
                                 args.binary, cache)
        ref = ct.read_midi_notes(os.path.join(folder, "notes.mid"))
        cands = features(h, frame_s)
        pieces.append(dict(name=p["name"], instrument=p["instrument"], ref=ref, cands=cands,
                           y=label(ref, cands, frame_s, ct.LOW), frame_s=frame_s))
        print(f"{p['name']}: {len(cands)} candidates, {sum(pieces[-1]['y'])} notes found of "
              f"{len(ref)}", file=sys.stderr)

    def fit(train):
        x = np.array([c[3] for p in train for c in p["cands"]])
        y = np.array([v for p in train for v in p["y"]])
        return LogisticRegression(C=1.0, max_iter=5000).fit(x, y)

    def f_of(model, p, threshold):
        if not p["cands"]:
            return 0.0
        conf = model.predict_proba(np.array([c[3] for c in p["cands"]]))[:, 1]
        est = [(s * p["frame_s"], e * p["frame_s"], ct.LOW + j)
               for (j, s, e, _), c in zip(p["cands"], conf) if c >= threshold]
        return ct.score(p["ref"], est)[2]

    print("| confidence | median F (4-fold CV by piece) | worst | piano median | piano worst |")
    print("|---|---|---|---|---|")
    for threshold in (0.3, 0.4, 0.5):
        fs, piano = [], []
        for fold in range(4):
            test = [p for i, p in enumerate(pieces) if i % 4 == fold]
            model = fit([p for i, p in enumerate(pieces) if i % 4 != fold])
            for p in test:
                f = f_of(model, p, threshold)
                fs.append(f)
                if p["instrument"] == "piano":
                    piano.append(f)
        print(f"| {threshold} | {np.median(fs):.3f} | {min(fs):.3f} | {np.median(piano):.3f} | "
              f"{min(piano):.3f} |")
    model = fit(pieces)
    print("\n// Fitted by scripts/fit_note_model.py on the tuning split "
          f"({len(pieces)} pieces, {sum(len(p['cands']) for p in pieces)} candidates).")
    print(f"const INTERCEPT: f32 = {model.intercept_[0]:.6};")
    print("const WEIGHTS: [f32; FEATURES] = [")
    for name, w in zip(NAMES, model.coef_[0]):
        print(f"    {w:.6}, // {name}")
    print("];")


if __name__ == "__main__":
    main()
