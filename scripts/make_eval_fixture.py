#!/usr/bin/env python3
"""Makes tests/data/eval: short synthetic mixtures' references and estimates (float32 WAV), and
the scores mir_eval 0.8.2 and museval 0.4.1 compute for them (scores.json), for the agreement
tests of `demix eval` in tests/it/eval.rs. The tests need no Python.

    python3 scripts/make_eval_fixture.py        # from the repository root

Cases (each a folder with ref/, est/ and scores.json):

- mono: 3 sources, 6 kHz, 4.1 s. Reference "bass" is silent in 1-2 s and estimate "lead" in
  3-4 s, so museval gives NaN in those windows; the last 0.1 s is not a whole window.
- stereo: 2 sources, 8 kHz, 1.6 s, panned and delayed differently in the two channels, with
  spatial distortion in the estimates.
- tonal: 2 sources, 6 kHz, 2.5 s, harmonic partials with vibrato over a noise floor at the
  level of 16-bit dither: the delays of the references are nearly linearly dependent
  (condition number about 1e9), a test of the solver's accuracy.

Each estimate is its reference filtered by a short FIR, plus time-varying leakage of the other
sources, plus noise and a soft clip (artifacts). In mono and stereo the signals are filtered
noise, so every solve is well conditioned.

scores.json holds, with NaN written as null:

- v4: museval.evaluate(refs, ests, win=rate, hop=rate) (as museval.eval_dir does with its
  default 1 s): every frame's SDR/ISR/SIR/SAR, and museval's per-source figure, the TrackStore
  median (nanmedian of the values quantized to 1e-5, infinite ones as NaN);
- v4_half (stereo): the same with 0.5 s windows every 0.25 s;
- v3: mir_eval.separation.bss_eval_sources (mono) or bss_eval_images (stereo),
  compute_permutation=False;
- v3_permuted, v4_permuted: the estimates in the order `shuffle` (est/ holds them under their
  reference names; the test renames them), compute_permutation=True, with the chosen `perm`;
  v4_permuted only for stereo (museval's mean SIR is NaN when a window is silent);
- si_sdr: SI-SDR from its definition, all channels together, no mean removed.
"""

import json
import os
import sys
import types
import warnings

import numpy as np
import scipy.io.wavfile
import scipy.signal

# museval's __init__ imports musdb, which needs ffmpeg at import time; nothing here uses it.
sys.modules.setdefault("musdb", types.ModuleType("musdb"))
import museval  # noqa: E402
import museval.metrics  # noqa: E402
import museval.version  # noqa: E402
import mir_eval  # noqa: E402
import mir_eval.separation  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)  # mir_eval.separation is deprecated

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "eval")
RATE = 8000  # stereo; mono and tonal are at 6 kHz, to keep the files small


def colored_noise(rng, n, low, high, rate):
    """White noise band-passed to [low, high] Hz (0 for low-pass or high-pass)."""
    x = rng.standard_normal(n)
    if low and high:
        sos = scipy.signal.butter(4, [low, high], btype="bandpass", fs=rate, output="sos")
    elif high:
        sos = scipy.signal.butter(4, high, btype="lowpass", fs=rate, output="sos")
    else:
        sos = scipy.signal.butter(4, low, btype="highpass", fs=rate, output="sos")
    y = scipy.signal.sosfilt(sos, x)
    # Add a little white noise so that no band is empty (well-conditioned correlations).
    return y / np.std(y) + 0.05 * rng.standard_normal(n)


def envelope(n, rate_hz, depth, phase, rate):
    t = np.arange(n) / rate
    return 1.0 - depth * 0.5 * (1 + np.sin(2 * np.pi * rate_hz * t + phase))


def estimate(rng, refs, j, fir, leak, noise, clip, rate):
    """refs[j] filtered by `fir`, plus leak[k](t) * refs[k], plus noise, soft-clipped."""
    n = refs.shape[1]
    y = scipy.signal.lfilter(fir, [1.0], refs[j], axis=0)
    for k in range(refs.shape[0]):
        if k != j:
            gain = leak[k] * envelope(n, 0.7 + 0.3 * k, 0.8, k, rate)
            y = y + gain[:, None] * refs[k]
    y = y + noise * rng.standard_normal(y.shape)
    return np.tanh(clip * y) / clip


def write_case(name, rate, names, refs, ests, shuffle, extra_windows=()):
    """Writes the WAV files and every score of one case. refs, ests: (nsrc, n, nchan)."""
    folder = os.path.join(OUT, name)
    for sub in ("ref", "est"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    refs = refs.astype(np.float32)
    ests = ests.astype(np.float32)
    for k, source in enumerate(names):
        scipy.io.wavfile.write(os.path.join(folder, "ref", source + ".wav"), rate, refs[k])
        scipy.io.wavfile.write(os.path.join(folder, "est", source + ".wav"), rate, ests[k])
    # Score exactly what demix reads: the float32 samples, as float64.
    refs = refs.astype(np.float64)
    ests = ests.astype(np.float64)
    nchan = refs.shape[2]
    scores = {"rate": rate, "sources": names, "shuffle": shuffle}

    def museval_v4(window, hop, estimates, permute):
        sdr, isr, sir, sar, perm = museval.metrics.bss_eval(
            refs,
            estimates,
            window=window,
            hop=hop,
            compute_permutation=permute,
            filters_len=512,
            framewise_filters=False,
            bsseval_sources_version=False,
        )
        store = museval.TrackStore(track_name=name, win=window / rate, hop=hop / rate)
        for k, source in enumerate(names):
            store.add_target(
                target_name=source,
                values={"SDR": sdr[k].tolist(), "SIR": sir[k].tolist(),
                        "ISR": isr[k].tolist(), "SAR": sar[k].tolist()},
            )
        median = {
            metric.lower(): [
                float(store.frames_agg([float(f["metrics"][metric]) for f in t["frames"]]))
                for t in store.scores["targets"]
            ]
            for metric in ("SDR", "SIR", "SAR", "ISR")
        }
        frames = {"sdr": sdr.tolist(), "sir": sir.tolist(), "sar": sar.tolist(), "isr": isr.tolist()}
        return {"window": window, "hop": hop, "frames": frames, "median": median,
                "perm": np.asarray(perm)[:, 0].tolist()}

    # museval.evaluate is metrics.bss_eval with these arguments (padding changes nothing here).
    scores["v4"] = museval_v4(rate, rate, ests, False)
    check = museval.evaluate(refs, ests, win=rate, hop=rate)
    assert all(np.array_equal(a, b, equal_nan=True)
               for a, b in zip(check, [scores["v4"]["frames"][m] for m in ("sdr", "isr", "sir", "sar")]))
    for label, window, hop in extra_windows:
        scores[label] = museval_v4(window, hop, ests, False)

    shuffled = ests[shuffle]

    def mir_eval_v3(estimates, permute):
        if nchan == 1:
            sdr, sir, sar, perm = mir_eval.separation.bss_eval_sources(
                refs[:, :, 0], estimates[:, :, 0], compute_permutation=permute)
            isr = None
        else:
            sdr, isr, sir, sar, perm = mir_eval.separation.bss_eval_images(
                refs, estimates, compute_permutation=permute)
            isr = isr.tolist()
        return {"sdr": sdr.tolist(), "sir": sir.tolist(), "sar": sar.tolist(), "isr": isr,
                "perm": np.asarray(perm).tolist()}

    scores["v3"] = mir_eval_v3(ests, False)
    scores["v3_permuted"] = mir_eval_v3(shuffled, True)
    if name == "stereo":
        scores["v4_permuted"] = museval_v4(rate, rate, shuffled, True)

    def si_sdr(s, e):
        s, e = s.ravel(), e.ravel()
        alpha = np.dot(e, s) / np.dot(s, s)
        return float(10 * np.log10(np.sum((alpha * s) ** 2) / np.sum((alpha * s - e) ** 2)))

    scores["si_sdr"] = [si_sdr(refs[k], ests[k]) for k in range(len(names))]

    def nan_to_null(x):
        if isinstance(x, float) and not np.isfinite(x):
            return None
        if isinstance(x, list):
            return [nan_to_null(v) for v in x]
        if isinstance(x, dict):
            return {k: nan_to_null(v) for k, v in x.items()}
        return x

    with open(os.path.join(folder, "scores.json"), "w") as f:
        json.dump(nan_to_null(scores), f, indent=1, allow_nan=False)
        f.write("\n")


def main():
    print(f"mir_eval {mir_eval.__version__}, museval {museval.version._version}")
    rng = np.random.default_rng(20240607)

    # Mono: 3 sources.
    rate = 6000
    n = int(4.1 * rate)
    bass = colored_noise(rng, n, 0, 600, rate) * envelope(n, 0.5, 0.6, 0.0, rate)
    drums = colored_noise(rng, n, 400, 2500, rate) * envelope(n, 2.0, 0.9, 1.0, rate)
    lead = colored_noise(rng, n, 1500, 0, rate) * envelope(n, 1.3, 0.5, 2.0, rate)
    bass[rate : 2 * rate] = 0.0  # museval: window 1 is skipped
    refs = np.stack([0.3 * bass, 0.25 * drums, 0.2 * lead])[:, :, None]
    ests = np.stack(
        [
            estimate(rng, refs, 0, [0.9, 0.15, -0.05], {1: 0.15, 2: 0.05}, 0.01, 1.5, rate),
            estimate(rng, refs, 1, [1.0, 0.0, 0.0, 0.1], {0: 0.3, 2: 0.1}, 0.02, 2.0, rate),
            estimate(rng, refs, 2, [0.8, -0.2], {0: 0.05, 1: 0.2}, 0.005, 1.0, rate),
        ]
    )
    ests[2, 3 * rate : 4 * rate] = 0.0  # museval: window 3 is skipped
    write_case("mono", rate, ["bass", "drums", "lead"], refs, ests, shuffle=[2, 0, 1])

    # Stereo: 2 sources, each panned and delayed, estimates with cross-channel leakage.
    rate = RATE
    n = int(1.6 * rate)
    a = colored_noise(rng, n + 8, 0, 1200, rate)
    b = colored_noise(rng, n + 8, 800, 0, rate)
    voice = 0.3 * np.stack([a[8:], 0.6 * a[5 : n + 5]], axis=1)
    guitar = 0.25 * np.stack([0.4 * b[:n], b[3 : n + 3]], axis=1)
    refs = np.stack([voice, guitar])
    ests = np.stack(
        [
            estimate(rng, refs, 0, [1.0, 0.1], {1: 0.2}, 0.01, 1.2, rate),
            estimate(rng, refs, 1, [0.9, 0.0, 0.05], {0: 0.1}, 0.02, 1.8, rate),
        ]
    )
    # Spatial distortion: some of each channel in the other.
    ests = ests + 0.1 * ests[:, :, ::-1]
    write_case("stereo", rate, ["voice", "guitar"], refs, ests, shuffle=[1, 0],
               extra_windows=[("v4_half", rate // 2, rate // 4)])

    # Tonal: 2 mono sources of harmonic partials with vibrato over a white noise floor at the
    # level of 16-bit dither. The delays of such references are nearly linearly dependent
    # (the Gram matrix's condition number is printed, about 1e9), which is where a solver
    # that is not backward stable loses agreement.
    rate = 6000
    n = int(2.5 * rate)
    t = np.arange(n) / rate

    def partials(f0, count, vibrato_hz, decay):
        phase = 2 * np.pi * f0 * (t + 0.003 / (2 * np.pi * vibrato_hz) * np.sin(2 * np.pi * vibrato_hz * t))
        return sum(np.sin(h * phase + h) * decay**h for h in range(1, count + 1))

    organ = 0.3 * partials(220.0, 8, 5.0, 0.7) * envelope(n, 0.8, 0.3, 0.0, rate)
    flute = 0.2 * partials(587.3, 4, 6.0, 0.4) * envelope(n, 1.1, 0.5, 1.0, rate)
    refs = np.stack([organ, flute])[:, :, None] + 3e-5 * rng.standard_normal((2, n, 1))
    ests = np.stack(
        [
            estimate(rng, refs, 0, [0.95, 0.1], {1: 0.1}, 0.003, 1.0, rate),
            estimate(rng, refs, 1, [1.0, 0.0, -0.1], {0: 0.2}, 0.01, 1.5, rate),
        ]
    )
    g, _ = museval.metrics._compute_reference_correlations(refs.astype(np.float32).astype(np.float64), 512)
    eig = np.linalg.eigvalsh(museval.metrics._reshape_G(g))
    print(f"tonal: condition number of G {eig[-1] / eig[0]:.1e}")
    write_case("tonal", rate, ["organ", "flute"], refs, ests, shuffle=[1, 0])

    total = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(OUT) for f in files
    )
    print(f"wrote {OUT}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
