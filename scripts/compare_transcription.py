#!/usr/bin/env python3
"""Transcribe the solo pieces of one corpus split (scripts/make_corpus.py: piano, electric
piano, guitar, harp, marimba) with `demix inspect --notes` and with the equivalent
scikit-learn pipeline, and score both with mir_eval, per piece and per instrument (median and
worst onset F). Development only: not run by CI.

The scikit-learn pipeline is demix's with scikit-learn doing the factorisation: the same
STFT (centred 2048-point Hann frames, hop 512, channel magnitudes summed), the same fixed
harmonic templates (one per semitone, partials n f0 with amplitude n^-1 drawn as the
window's main lobe; checked against the templates demix writes with --fixed-templates),
scikit-learn's KL multiplicative updates for the activations, and the same thresholds
turning activations into notes (a Python copy of src/inspect/transcribe.rs).

Scoring: mir_eval.transcription.precision_recall_f1_overlap with a 50 ms onset tolerance
and offset_ratio=None (onset and pitch only).

With --learned, a third demix column transcribes each piece with templates learned from its
training clip (the same instrument playing every semitone of the piece's range, one note at a
time): `demix learn train.flac --notes LOW-HIGH` over the clip's notes, then `inspect
--source`. The time of that column includes `learn`.
The scikit-learn column has no learned counterpart.

Usage, from the repository root after `cargo build --release` and make_corpus.py:
    python3 scripts/compare_transcription.py --split tuning        # tune here
    python3 scripts/compare_transcription.py --split validation    # report from here
    python3 scripts/compare_transcription.py --dev-mixes ../shared/dev-mixes
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import mir_eval
import numpy as np
import pretty_midi
import scipy.signal
import soundfile as sf
from sklearn.decomposition import non_negative_factorization

N_FFT, HOP = 2048, 512
FOOT_S = 0.025  # transcribe.rs's FOOT_S
LOW, HIGH = 21, 108  # A0-C8
DEMIX = os.path.join(os.path.dirname(__file__), "..", "target", "release", "demix")


def read_midi_notes(path):
    """(onset_s, offset_s, midi) of every note of a standard MIDI file."""
    pm = pretty_midi.PrettyMIDI(str(path))
    return sorted((n.start, n.end, n.pitch) for i in pm.instruments if not i.is_drum
                  for n in i.notes)


def magnitude(path):
    x, sr = sf.read(path, always_2d=True, dtype="float32")
    frames = len(x) // HOP + 1
    if len(x) > 0 and len(x) - 1 > (frames - 1) * HOP + N_FFT // 4:
        frames += 1  # as demix's Stft::n_frames
    window = scipy.signal.get_window("hann", N_FFT, fftbins=True)
    v = 0
    for c in x.T:
        padded = np.concatenate([np.zeros(N_FFT // 2), c, np.zeros(N_FFT + frames * HOP)])
        idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
        v = v + np.abs(np.fft.rfft(padded[idx] * window, axis=1))
    return v.T.astype(np.float64), sr  # (bins, frames)


def harmonic_templates(sr, decay=1.0, max_partials=40):
    """demix's notes::harmonic_templates for A0-C8, in numpy."""
    over = 64
    window = scipy.signal.get_window("hann", N_FFT, fftbins=True)
    lobe = np.abs(np.fft.rfft(window, N_FFT * over))
    lobe /= lobe[0]
    first_min = next(i for i in range(1, 4 * over + 1) if lobe[i] > lobe[i - 1])
    lobe = lobe[:first_min]
    half_width = (len(lobe) - 1) / over
    bins, bin_hz = N_FFT // 2 + 1, sr / N_FFT
    k = np.arange(bins)
    w = np.zeros((bins, HIGH - LOW + 1))
    for j, m in enumerate(range(LOW, HIGH + 1)):
        f0 = 440.0 * 2 ** ((m - 69) / 12)
        for n in range(1, max_partials + 1):
            if n * f0 > 0.95 * sr / 2:
                break
            d = np.abs(k - n * f0 / bin_hz)
            sel = d <= half_width
            w[sel, j] += n ** -decay * np.interp(d[sel] * over, np.arange(len(lobe)), lobe)
        w[:, j] /= w[:, j].sum()
    return w


def segments(h, global_peak, frame_s, onset=0.1, min_level=0.3, offset=0.5, reonset=1.5,
             min_duration=0.05, foot_s=FOOT_S, rise=2, need_peak=True):
    """A copy of src/inspect/transcribe.rs: (start, end) frames where `h` sounds."""
    peak = h.max()
    on_level = max(onset * peak, min_level * global_peak)
    if not peak > 0 or peak < on_level:
        return []
    off_level = offset * on_level
    min_frames = max(int(np.ceil(min_duration / frame_s)), 1)
    foot = int(np.floor(foot_s / frame_s + 0.5))
    out, start, last_end, peaked = [], None, 0, False

    def push(s, e):
        if e - s >= min_frames:
            out.append((s, e))

    for t, v in enumerate(h):
        if start is None:
            if v >= on_level:
                s = t
                while s > last_end and t - s < foot and h[s - 1] < h[s]:
                    s -= 1
                start, peaked = s, False
        elif v < off_level:
            push(start, t)
            last_end, start = t, None
        elif (reonset > 0 and (peaked or not need_peak) and t >= start + 2 * rise
              and v > reonset * h[t - rise]):
            begin = min(range(t - rise, t + 1), key=lambda a: (h[a], -a))
            if begin > start:
                push(start, begin)
                last_end = start = begin
                peaked = False
        elif v < h[t - 1]:
            peaked = True
    if start is not None:
        push(start, len(h))
    return out


def notes_from_activations(h, frame_s):
    g = h.max()
    return [(s * frame_s, e * frame_s, LOW + j)
            for j in range(h.shape[0]) for s, e in segments(h[j], g, frame_s)]


def sklearn_transcribe(path):
    v, sr = magnitude(path)
    w = harmonic_templates(sr)
    x = np.maximum(v / v.mean(), 1e-9)  # as demix scales V; KL is scale-covariant
    acts, _, _ = non_negative_factorization(
        x.T, H=w.T, n_components=w.shape[1], init="custom", update_H=False, solver="mu",
        beta_loss="kullback-leibler", max_iter=200, tol=1e-4,
        W=np.full((x.shape[1], w.shape[1]), np.sqrt(x.mean() / w.shape[1])))
    return notes_from_activations(acts.T * v.mean(), HOP / sr), w


def demix_transcribe(path, extra, binary=DEMIX):
    with tempfile.TemporaryDirectory() as tmp:
        midi = os.path.join(tmp, "notes.mid")
        subprocess.run([binary, "-q", "inspect", path, "-o", os.path.join(tmp, "out"),
                        "--notes", "A0-C8", "--midi", midi] + extra, check=True)
        # One file is written into OUT/<file stem>/, as demix separate writes it.
        stem = os.path.splitext(os.path.basename(path))[0]
        w = np.load(os.path.join(tmp, "out", stem, "W.npy"))
        return read_midi_notes(midi), w


def demix_learned(path, train, binary=DEMIX, learn_extra=(), extra=()):
    """Learns one template per note of the training clip's range (`demix learn --notes`),
    then transcribes `path` with them (`demix inspect --source`)."""
    pitches = [m for _, _, m in read_midi_notes(train.replace(".flac", ".mid"))]
    with tempfile.TemporaryDirectory() as tmp:
        npz, midi = os.path.join(tmp, "instrument.npz"), os.path.join(tmp, "notes.mid")
        subprocess.run([binary, "-q", "learn", train, "--notes", f"{min(pitches)}-{max(pitches)}",
                        "-o", npz] + list(learn_extra), check=True)
        subprocess.run([binary, "-q", "inspect", path, "-o", os.path.join(tmp, "out"),
                        "--source", npz, "--midi", midi] + list(extra), check=True)
        return read_midi_notes(midi)


def score(reference, estimate):
    hz = lambda m: 440.0 * 2 ** ((np.asarray(m, dtype=float) - 69) / 12)
    ri = np.array([[a, b] for a, b, _ in reference])
    if not estimate:
        return 0.0, 0.0, 0.0
    ei = np.array([[a, max(b, a + 1e-3)] for a, b, _ in estimate])
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ri, hz([m for _, _, m in reference]), ei, hz([m for _, _, m in estimate]),
        onset_tolerance=0.05, offset_ratio=None)
    return p, r, f


def items_of(args):
    """(name, instrument, sound font, room, audio path, MIDI path) of every piece to score."""
    if args.dev_mixes:
        d = args.dev_mixes
        out = [("piano_0", "piano", "FluidR3", "dry", f"{d}/piano_0/mix.flac",
                f"{d}/piano_0/notes.mid")]
        for song in ("s00_piano_bass", "s02_piano_bass_drums", "s04_voice_piano"):
            out.append((f"{song}/piano", "piano", "FluidR3", "dry", f"{d}/{song}/piano.flac",
                        f"{d}/{song}/piano.mid"))
        return out
    root = os.path.join(args.corpus, args.split)
    index = json.load(open(os.path.join(root, "index.json")))
    return [(p["name"], p["instrument"], p["soundfont"], "reverb" if p["reverb"] else "dry",
             os.path.join(root, "solo", p["name"], "mix.flac"),
             os.path.join(root, "solo", p["name"], "notes.mid")) for p in index["solo"]]


def main():
    warnings.filterwarnings("ignore", message="When update_H=False")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--corpus", default=os.path.join(here, "..", "corpus"))
    ap.add_argument("--split", default="tuning", choices=["tuning", "validation"])
    ap.add_argument("--dev-mixes", help="score the development mixes' piano parts instead")
    ap.add_argument("--demix-args", default="", help="extra options for demix inspect")
    ap.add_argument("--skip-peer", action="store_true", help="demix only")
    ap.add_argument("--binary", default=DEMIX, help="the demix binary to run")
    ap.add_argument("--learned", action="store_true",
                    help="also transcribe with templates learned from each piece's training "
                    "clip (demix learn -k <its notes>, then inspect --source)")
    ap.add_argument("--learn-args", default="", help="extra options for demix learn")
    ap.add_argument("--only-learned", action="store_true",
                    help="transcribe with the learned templates only")
    args = ap.parse_args()
    extra = args.demix_args.split()
    pipelines = [] if args.only_learned else ["demix (adapted)", "demix --fixed-templates"]
    if args.learned or args.only_learned:
        pipelines.append("demix --source (learned)")
    if not (args.skip_peer or args.only_learned):
        pipelines.append("scikit-learn (fixed)")
    rows, times = [], {p: 0.0 for p in pipelines}
    for name, inst, font, room, path, midi in items_of(args):
        ref = read_midi_notes(midi)
        scores = {}
        for p in pipelines:
            t = time.time()
            if p == "demix (adapted)":
                est, _ = demix_transcribe(path, extra, args.binary)
            elif p == "demix --fixed-templates":
                est, w_demix = demix_transcribe(path, ["--fixed-templates"] + extra, args.binary)
            elif p == "demix --source (learned)":
                train = os.path.join(os.path.dirname(path), "train.flac")
                est = demix_learned(path, train, args.binary, args.learn_args.split(), extra)
            else:
                est, w_py = sklearn_transcribe(path)
                # The templates are compared when demix's frames are the peer's (for
                # example with --demix-args="--n-fft 2048 --hop 512").
                same = w_demix.shape == w_py.shape
                diff = np.abs(w_demix - w_py).max() / w_py.max() if same else 0.0
                if diff > 1e-3:
                    print(f"warning: {name}: templates differ by {diff:.2e} of their peak",
                          file=sys.stderr)
            times[p] += time.time() - t
            scores[p] = score(ref, est)
        rows.append(dict(name=name, instrument=inst, soundfont=font, room=room, notes=len(ref),
                         scores=scores))
    print("| piece | instrument | sound font | room | notes | "
          + " | ".join(f"{p} P / R / F" for p in pipelines) + " |")
    print("|---|---|---|---|---|" + "---|" * len(pipelines))
    for r in rows:
        cells = [f"{s[0]:.3f} / {s[1]:.3f} / **{s[2]:.3f}**" for s in r["scores"].values()]
        print(f"| {r['name']} | {r['instrument']} | {r['soundfont']} | {r['room']} | {r['notes']} | "
              + " | ".join(cells) + " |")
    groups = sorted({r["instrument"] for r in rows}) + ["all"]
    print("\n| instrument | pieces | " + " | ".join(f"{p}: median F (worst)" for p in pipelines)
          + " |")
    print("|---|---|" + "---|" * len(pipelines))
    for g in groups:
        sel = [r for r in rows if g in ("all", r["instrument"])]
        cells = []
        for p in pipelines:
            f = [r["scores"][p][2] for r in sel]
            cells.append(f"{np.median(f):.3f} ({min(f):.3f})")
        print(f"| {g} | {len(sel)} | " + " | ".join(cells) + " |")
    print("| time in all | | " + " | ".join(f"{times[p]:.1f} s" for p in pipelines) + " |")


if __name__ == "__main__":
    main()
