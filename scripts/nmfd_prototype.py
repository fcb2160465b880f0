"""Prototype, not demix: does a convolutive (NMFD) model for the drum sources beat plain NMF
templates in supervised separation, everything else equal?

Per source, templates are learned from its training clip with β-divergence multiplicative
updates; a drum source gets T-frame templates (NMFD: V ≈ Σ_t W_t · shift_t(H)), the others
T = 1. The mix's activations are fitted with all templates fixed, then mono soft masks of
power 2 render the estimates, scored with mir_eval on the corpus's tuning split:

    python3 scripts/nmfd_prototype.py -T 1 --limit 6     # plain templates for every source
    python3 scripts/nmfd_prototype.py -T 6 --limit 6     # 6-frame templates for drums

Slow (numpy, one core): about a minute per song."""
import json, sys, warnings, numpy as np, soundfile as sf, librosa, mir_eval
from pathlib import Path
warnings.simplefilter("ignore", FutureWarning)  # mir_eval.separation is deprecated
EPS = 1e-12
N_FFT, HOP = 2048, 512

def mono(p):
    y, sr = sf.read(str(p), dtype="float32", always_2d=True)
    return y.mean(axis=1)

def spec(y):
    x = librosa.stft(y, n_fft=N_FFT, hop_length=HOP)
    v = np.abs(x)
    return x, np.maximum(v, v.max() * 1e-6)

def expand(h, T):
    """(K, N) -> (T, K, N): shift_t(H)"""
    K, N = h.shape
    out = np.zeros((T, K, N))
    for t in range(T):
        out[t, :, t:] = h[:, : N - t]
    return out

def recon(W, H):  # W (T,F,K), H (K,N)
    He = expand(H, W.shape[0])
    return np.einsum('tfk,tkn->fn', W, He) + EPS

def fit(V, W, H, beta, iters, update_w, rng=None):
    T = W.shape[0]
    for it in range(iters):
        L = recon(W, H)
        A = V * L ** (beta - 2); B = L ** (beta - 1)
        # H: sum_t W_t^T shift_{-t}(A)
        num = np.zeros_like(H); den = np.zeros_like(H)
        N = H.shape[1]
        for t in range(T):
            num[:, : N - t] += W[t].T @ A[:, t:]
            den[:, : N - t] += W[t].T @ B[:, t:]
        H *= num / (den + EPS)
        if update_w:
            L = recon(W, H)
            A = V * L ** (beta - 2); B = L ** (beta - 1)
            He = expand(H, T)
            for t in range(T):
                W[t] *= (A @ He[t].T) / (B @ He[t].T + EPS)
            s = W.sum(axis=(0, 1))  # normalise each component's total
            W /= s; H *= s[:, None]
    return W, H

def learn(V, K, T, beta, iters, seed):
    rng = np.random.default_rng(seed)
    F, N = V.shape
    W = rng.random((T, F, K)) + 0.1
    if T > 1:  # decaying start like NMF Toolbox's initialisation
        W *= np.exp(-np.arange(T) / (T / 2))[:, None, None]
    H = rng.random((K, N)) + 0.1
    W, H = fit(V, W, H, beta, iters, True)
    return W

def separate(song, T_drums, K, beta, iters_learn, iters_sep, T_all=None):
    meta = json.loads((song / 'meta.json').read_text())
    srcs = meta['sources']
    Ws = []
    for s in srcs:
        _, V = spec(mono(song / 'train' / f'{s}.flac'))
        T = T_all if T_all else (T_drums if meta['families'][s] == 'drums' else 1)
        W = learn(V, K, T, beta, iters_learn, 0)
        Ws.append(W)
    Tm = max(W.shape[0] for W in Ws)
    F = Ws[0].shape[1]
    Wall = np.zeros((Tm, F, K * len(Ws)))
    for i, W in enumerate(Ws):
        Wall[: W.shape[0], :, i * K:(i + 1) * K] = W
    y = mono(song / 'mix.flac')
    X, V = spec(y)
    H = np.random.default_rng(1).random((Wall.shape[2], V.shape[1])) + 0.1
    _, H = fit(V, Wall, H, beta, iters_sep, False)
    models = [recon(Wall[:, :, i*K:(i+1)*K], H[i*K:(i+1)*K]) for i in range(len(Ws))]
    P = [m ** 2 for m in models]; tot = sum(P) + EPS
    est = [librosa.istft(X * p / tot, hop_length=HOP, length=len(y)) for p in P]
    refs = np.stack([mono(song / f'{s}.flac') for s in srcs])
    sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(refs, np.stack(est), compute_permutation=False)
    return [(s, meta['families'][s], float(sdr[i])) for i, s in enumerate(srcs)]

if __name__ == '__main__':
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument('--corpus', default='corpus'); ap.add_argument('--split', default='tuning'); ap.add_argument('--songs', default='drums')
    ap.add_argument('-T', type=int, default=8); ap.add_argument('-K', type=int, default=16)
    ap.add_argument('--beta', type=float, default=1.0); ap.add_argument('--iters', type=int, default=100)
    ap.add_argument('--limit', type=int, default=99); ap.add_argument('--tall', type=int, default=0)
    a = ap.parse_args()
    root = Path(a.corpus) / a.split / 'songs'
    songs = [p for p in sorted(root.iterdir()) if a.songs in p.name][: a.limit]
    for song in songs:
        r = separate(song, a.T, a.K, a.beta, a.iters, a.iters, a.tall or None)
        print(song.name, ' '.join(f'{s}:{f}:{d:.2f}' for s, f, d in r), flush=True)
