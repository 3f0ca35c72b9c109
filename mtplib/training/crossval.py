"""k-fold cross-validation of the linear solve at fixed radial coefficients.

At fixed radial coefficients the loss of eq. 7 is quadratic in theta_lin = [species_coeffs,
moment_coeffs], and its normal equations are linear in the weights (w_e, w_f, w_s):

    A(w) = w_e A_E + w_f A_F + w_s A_S,   b(w) = w_e b_E + w_f b_F + w_s b_S

where A_E = X_E^T S_E X_E etc. carry the per-size scalings S of eqs. 11-12. So one pass of
the design kernel gives, per fold and per term, the Gram matrices from which the solve for
any weights, ridge and fold follows by sums: the held-out errors of a whole grid of
hyperparameters cost one design pass plus small dense solves (instead of one `fit` per
fold and grid point).
"""
from __future__ import annotations

import numpy as np

from ..kernels.training import batch_design
from .data import prepare
from .loss import _k, pack
from .optimize import solve_linear


def kfold_parts(n_configs, folds, split_seed=0):
    """`folds` disjoint sorted index arrays covering range(n_configs): a seeded permutation
    cut into near-equal parts."""
    if not 2 <= folds <= n_configs:
        raise ValueError(f"folds must be in [2, {n_configs}] for {n_configs} configurations, "
                         f"got {folds}")
    order = np.random.default_rng(split_seed).permutation(n_configs)
    return [np.sort(p) for p in np.array_split(order, folds)]


def linear_cross_validation(images, potential, weight_grid, ridges=(1e-10,), folds=5,
                            split_seed=0, scaling="vibrations", labels=None):
    """Held-out errors of the linear solve at `potential`'s radial coefficients.

    weight_grid: (w_e, w_f, w_s) triples; ridges: Jacobi-scaled ridges (`solve_linear`).
    For each fold k the linear coefficients are solved on the other folds and the energy
    per atom and the force components of fold k are predicted from the design rows.
    Returns {(weights, ridge): (energy MAE meV/atom, force MAE eV/Å)}, each the mean over
    the folds of the fold's MAE (as a `fit` per fold followed by evaluation would give).
    """
    weight_grid = [tuple(float(x) for x in w) for w in weight_grid]
    use_f = 1.0 if any(w[1] > 0 for w in weight_grid) else 0.0
    use_s = 1.0 if any(w[2] > 0 for w in weight_grid) else 0.0
    configs = prepare(images, potential, (1.0, use_f, use_s), scaling, labels)
    parts = kfold_parts(len(configs), folds, split_seed)
    fold_of = np.empty(len(configs), dtype=np.int64)
    for k, p in enumerate(parts):
        fold_of[p] = k
    n_lin = potential.species_count + potential.alpha_scalar_moments
    a = potential.kernel_arrays()
    gram = np.zeros((folds, 3, n_lin, n_lin))        # per fold: A_E, A_F, A_S
    rhs = np.zeros((folds, 3, n_lin))
    held = []                 # per configuration: (fold, n_atoms, energy row, force rows, y)
    start = 0
    for bt in pack(configs, n_lin):
        row_start, y, w = bt.rows(True)
        X = batch_design(bt.cfg_atoms, row_start, bt.types, bt.offsets, bt.nbr, bt.vec,
                         *_k(potential), a["n_moments"], True)
        for c, cfg in enumerate(bt.configs):
            r0, r1 = row_start[c], row_start[c + 1]
            k = fold_of[start + c]
            n = cfg.n_atoms
            terms = ((slice(r0, r0 + 1), cfg.w_energy),
                     (slice(r0 + 1, r0 + 1 + 3 * n), cfg.w_forces),
                     (slice(r0 + 1 + 3 * n, r1), cfg.w_stress))
            for t, (rows, wt) in enumerate(terms):
                if wt > 0:
                    Xt = X[rows]
                    gram[k, t] += wt * (Xt.T @ Xt)
                    rhs[k, t] += wt * (Xt.T @ y[rows])
            has_f = cfg.forces is not None
            held.append((k, n, X[r0].copy(), X[r0 + 1:r0 + 1 + 3 * n].copy() if has_f else None,
                         y[r0], y[r0 + 1:r0 + 1 + 3 * n].copy() if has_f else None))
        start += len(bt.configs)
    total_gram, total_rhs = gram.sum(axis=0), rhs.sum(axis=0)
    scores = {}
    for wts in weight_grid:
        wv = np.array(wts)
        for ridge in ridges:
            fold_e, fold_f = [], []
            for k in range(folds):
                A = np.tensordot(wv, total_gram - gram[k], axes=1)
                b = np.tensordot(wv, total_rhs - rhs[k], axes=1)
                theta = solve_linear(A, b, None, ridge)
                de, df = [], []
                for kk, n, xe, xf, ye, yf in held:
                    if kk != k:
                        continue
                    de.append(abs(xe @ theta - ye) / n)
                    if xf is not None:
                        df.append(np.abs(xf @ theta - yf))
                fold_e.append(1000.0 * float(np.mean(de)))
                fold_f.append(float(np.concatenate(df).mean()) if df else float("nan"))
            scores[(wts, float(ridge))] = (float(np.mean(fold_e)), float(np.mean(fold_f)))
    return scores
