#!/usr/bin/env python3
"""Transcribe piano recordings with `demix inspect --notes` and with the equivalent
scikit-learn pipeline, and score both with mir_eval. Development only: not run by CI.

The scikit-learn pipeline is demix's with scikit-learn doing the factorisation: the same
STFT (centred 2048-point Hann frames, hop 512, channel magnitudes summed), the same fixed
harmonic templates (one per semitone, partials n f0 with amplitude n^-1.5 drawn as the
window's main lobe; checked against the templates demix writes with --fixed-templates),
scikit-learn's KL multiplicative updates for the activations, and the same thresholds
turning activations into notes (a Python copy of src/inspect/transcribe.rs).

Scoring: mir_eval.transcription.precision_recall_f1_overlap with a 50 ms onset tolerance
and offset_ratio=None (onset and pitch only).

Usage, from the repository root after `cargo build --release`:
    python3 scripts/compare_transcription.py [--dev-mixes ../shared/dev-mixes]
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time
import warnings

import mir_eval
import numpy as np
import scipy.signal
import soundfile as sf
from sklearn.decomposition import non_negative_factorization

N_FFT, HOP = 2048, 512
LOW, HIGH = 21, 108  # A0-C8
DEMIX = os.path.join(os.path.dirname(__file__), "..", "target", "release", "demix")


def read_midi_notes(path):
    """(onset_s, offset_s, midi) of every note of a format-0/1 standard MIDI file."""
    data = open(path, "rb").read()
    assert data[:4] == b"MThd"
    hlen, _fmt, ntrk, div = struct.unpack(">IHHH", data[4:14])
    pos, events = 8 + hlen, []

    def varint(p):
        v = 0
        while True:
            c = data[p]
            p += 1
            v = (v << 7) | (c & 0x7F)
            if c < 0x80:
                return v, p

    for _ in range(ntrk):
        assert data[pos:pos + 4] == b"MTrk"
        end = pos + 8 + struct.unpack(">I", data[pos + 4:pos + 8])[0]
        p, tick, status = pos + 8, 0, 0
        while p < end:
            dt, p = varint(p)
            tick += dt
            c = data[p]
            if c == 0xFF:
                kind = data[p + 1]
                ln, p = varint(p + 2)
                if kind == 0x51:
                    events.append((tick, 0, "tempo", int.from_bytes(data[p:p + 3], "big")))
                p += ln
                continue
            if c in (0xF0, 0xF7):
                ln, p = varint(p + 1)
                p += ln
                continue
            if c & 0x80:
                status, p = c, p + 1
            kind = status & 0xF0
            if kind in (0xC0, 0xD0):
                p += 1
                continue
            a, b = data[p], data[p + 1]
            p += 2
            if kind == 0x90 and b > 0:
                events.append((tick, 2, "on", (status & 0x0F, a)))
            elif kind in (0x80, 0x90):
                events.append((tick, 1, "off", (status & 0x0F, a)))
        pos = end
    events.sort(key=lambda e: (e[0], e[1]))
    tempo, last, now, open_notes, notes = 500000, 0, 0.0, {}, []
    for tick, _, kind, value in events:
        now += (tick - last) * tempo / 1e6 / div
        last = tick
        if kind == "tempo":
            tempo = value
        elif kind == "on":
            open_notes.setdefault(value, []).append(now)
        elif open_notes.get(value):
            notes.append((open_notes[value].pop(0), now, value[1]))
    return sorted(notes)


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


def harmonic_templates(sr, decay=1.5, max_partials=40):
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
             min_duration=0.05, foot=2, rise=2):
    """A copy of src/inspect/transcribe.rs: (start, end) frames where `h` sounds."""
    peak = h.max()
    on_level = max(onset * peak, min_level * global_peak)
    if not peak > 0 or peak < on_level:
        return []
    off_level = offset * on_level
    min_frames = max(int(np.ceil(min_duration / frame_s)), 1)
    out, start, last_end = [], None, 0

    def push(s, e):
        if e - s >= min_frames:
            out.append((s, e))

    for t, v in enumerate(h):
        if start is None:
            if v >= on_level:
                s = t
                while s > last_end and t - s < foot and h[s - 1] < h[s]:
                    s -= 1
                start = s
        elif v < off_level:
            push(start, t)
            last_end, start = t, None
        elif reonset > 0 and t >= start + 2 * rise and v > reonset * h[t - rise]:
            begin = min(range(t - rise, t + 1), key=lambda a: (h[a], -a))
            if begin > start:
                push(start, begin)
                last_end = start = begin
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


def demix_transcribe(path, extra):
    with tempfile.TemporaryDirectory() as tmp:
        midi = os.path.join(tmp, "notes.mid")
        subprocess.run([DEMIX, "-q", "inspect", path, "-o", os.path.join(tmp, "out"),
                        "--notes", "A0-C8", "--midi", midi] + extra, check=True)
        w = np.load(os.path.join(tmp, "out", "W.npy"))
        return read_midi_notes(midi), w


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


def main():
    warnings.filterwarnings("ignore", message="When update_H=False")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--dev-mixes", default=os.path.join(here, "..", "..", "shared", "dev-mixes"))
    args = ap.parse_args()
    d = args.dev_mixes
    if not os.path.isdir(d):
        d = "/work/shared/dev-mixes"
    items = [("piano_0/mix.flac", "piano_0/notes.mid")]
    for song in ("s00_piano_bass", "s02_piano_bass_drums", "s04_voice_piano"):
        items.append((f"{song}/piano.flac", f"{song}/piano.mid"))
    rows = []
    for audio, midi in items:
        path, ref = os.path.join(d, audio), read_midi_notes(os.path.join(d, midi))
        t = time.time()
        adapted, _ = demix_transcribe(path, [])
        t_adapted = time.time() - t
        t = time.time()
        fixed, w_demix = demix_transcribe(path, ["--fixed-templates"])
        t_fixed = time.time() - t
        t = time.time()
        sk, w_py = sklearn_transcribe(path)
        t_sk = time.time() - t
        diff = np.abs(w_demix - w_py).max() / w_py.max()
        if diff > 1e-3:
            print(f"warning: {audio}: templates differ by {diff:.2e} of their peak", file=sys.stderr)
        rows.append((audio, len(ref), score(ref, adapted), t_adapted, score(ref, fixed), t_fixed,
                     score(ref, sk), t_sk))
    print("| recording | notes | demix (adapted) P / R / F | demix --fixed-templates P / R / F "
          "| scikit-learn (fixed) P / R / F |")
    print("|---|---|---|---|---|")
    fmt = lambda s, t: f"{s[0]:.3f} / {s[1]:.3f} / **{s[2]:.3f}** ({t:.1f} s)"
    for audio, n, a, ta, fx, tf, sk, ts in rows:
        print(f"| {audio} | {n} | {fmt(a, ta)} | {fmt(fx, tf)} | {fmt(sk, ts)} |")
    mean = lambda i: np.mean([r[i][2] for r in rows])
    print(f"| mean onset F | | **{mean(2):.3f}** | **{mean(4):.3f}** | **{mean(6):.3f}** |")


if __name__ == "__main__":
    main()
