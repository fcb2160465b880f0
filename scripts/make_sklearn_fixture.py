#!/usr/bin/env python3
"""Make the scikit-learn reference fixture read by tests/it/sklearn.rs.

Run from the repository root (needs numpy and scikit-learn; made with scikit-learn 1.9.1,
numpy 2.4.6):

    python3 scripts/make_sklearn_fixture.py

It writes plain float64 .npy files (C order) into tests/data/sklearn_mu/:

    v.npy                      V, 24 x 300, positive (min well above 1e-3)
    w0.npy, h0.npy             the initial W (24 x 3) and H (3 x 300)
    w_<loss>.npy, h_<loss>.npy W and H after 50 multiplicative updates, for <loss> in
                               is, kl, frobenius
    cost_<loss>.npy            the beta-divergence of the final factors (0-d array; half the
                               squared Frobenius norm for frobenius)

V, W0 and H0 are rounded to float32 values (then stored as float64) so that demix, which
computes in f32, starts from exactly the same numbers. All values are kept far above
scikit-learn's EPSILON (float32 eps) and float64 eps, so none of its clipping steps
(WH < EPSILON, W or H < eps set to 0) ever fires, and demix's floors never fire either.
scikit-learn updates W then H in each iteration, like demix; with tol=0 it never checks
convergence and warns of nothing, but any ConvergenceWarning would be ignored anyway.
"""

import os
import warnings

import numpy as np
from sklearn.decomposition import non_negative_factorization
from sklearn.decomposition._nmf import _beta_divergence
from sklearn.exceptions import ConvergenceWarning

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "sklearn_mu")
LOSSES = {"is": "itakura-saito", "kl": "kullback-leibler", "frobenius": "frobenius"}
# T spans three of demix's 128-frame blocks, the last one partial, to exercise its block sums.
F, T, K, ITERATIONS = 24, 300, 3, 50


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32).astype(np.float64)


rng = np.random.default_rng(20240611)
# A rank-3 structure plus positive noise, so the fit is well posed but not exact.
v = f32(rng.gamma(2.0, 1.0, (F, K)) @ rng.gamma(2.0, 1.0, (K, T)) + rng.uniform(0.05, 0.5, (F, T)))
scale = np.sqrt(v.mean() / K)  # the scale of scikit-learn's random initialisation
w0 = f32(rng.uniform(0.3, 1.0, (F, K)) * scale)
h0 = f32(rng.uniform(0.3, 1.0, (K, T)) * scale)

os.makedirs(OUT, exist_ok=True)
for name, a in (("v", v), ("w0", w0), ("h0", h0)):
    np.save(os.path.join(OUT, f"{name}.npy"), a)

for short, loss in LOSSES.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w, h, n_iter = non_negative_factorization(
            v, W=w0.copy(), H=h0.copy(), n_components=K, init="custom", solver="mu",
            beta_loss=loss, max_iter=ITERATIONS, tol=0, alpha_W=0, alpha_H=0,
        )
    others = [c for c in caught if not issubclass(c.category, ConvergenceWarning)]
    assert not others, [str(c.message) for c in others]
    assert n_iter == ITERATIONS, n_iter
    cost = _beta_divergence(v, w, h, loss)
    np.save(os.path.join(OUT, f"w_{short}.npy"), np.ascontiguousarray(w))
    np.save(os.path.join(OUT, f"h_{short}.npy"), np.ascontiguousarray(h))
    np.save(os.path.join(OUT, f"cost_{short}.npy"), np.array(cost, dtype=np.float64))
    print(f"{loss}: cost {cost:.9g}, min W {w.min():.3g}, min H {h.min():.3g}, "
          f"min WH {(w @ h).min():.3g}, convergence warnings {len(caught) - len(others)}")
print(f"V: min {v.min():.3g}, max {v.max():.3g}, mean {v.mean():.3g}")
