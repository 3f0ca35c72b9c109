"""Levenberg-Marquardt over the radial coefficients of the VarPro problem (Kaufman's step).

The residuals of eq. 7 are r(c) = W^1/2 (X(c) theta*(c) - y), with theta*(c) the linear
solve at radial coefficients c. With J = d(X theta)/dc at fixed theta (forward differences
of the evaluation kernel, one pass per radial coefficient) Kaufman's approximation of the
projected Jacobian is (I - P_X) J (Golub & Pereyra 2003, sec. 3), so the Gauss-Newton
matrix of the projected loss and its gradient are

    H = J^T W J - (X^T W J)^T (X^T W X)^-1 (X^T W J),    g = J^T W r    (X^T W r = 0)

and a step solves (H + lambda diag H) dc = -g. There are few radial coefficients (tens)
and many residuals, so a step costs one evaluation per radial coefficient plus one design
pass, and follows the curvature that L-BFGS has to learn from gradients
(benchmarks/bench_radial_optimizer.py compares the two).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from ..kernels.training import batch_design, batch_evaluate
from .loss import _k, jacobi_scaled

FD_STEP = 1e-6          # forward-difference step, relative to 1 + |c_j|
LAMBDA_START = 1e-3
LAMBDA_MIN = 1e-7       # H is singular along the scale of each radial function (absorbed by
LAMBDA_MAX = 1e10       # the moment coefficients): keep some damping


def batch_predictions(bt, kargs, species_coeffs, moment_coeffs, n_moments, with_forces):
    """The predicted design rows of a batch (`Batch.rows` order: per configuration E, then
    with forces F (3N) and the symmetrised virial W (9, row 3b+a = W[a, b]))."""
    energy, forces, virial = batch_evaluate(bt.cfg_atoms, bt.types, bt.offsets, bt.nbr, bt.vec,
                                            *kargs, species_coeffs, moment_coeffs, n_moments)
    row_start = bt.rows(with_forces)[0]
    out = np.empty(row_start[-1])
    out[row_start[:-1]] = energy
    if with_forces:
        out[bt.force_rows] = forces.ravel()
        sym = 0.5 * (virial + virial.transpose(0, 2, 1))
        out[bt.virial_rows] = sym.transpose(0, 2, 1).reshape(-1, 9)
    return out


def radial_jacobian(potential, bt, with_forces=True, fd_step=FD_STEP):
    """d(predicted rows)/d(radial coefficients) of a batch at fixed linear coefficients,
    by forward differences: (rows, radial coefficient count)."""
    a = potential.kernel_arrays()
    kargs = list(_k(potential))
    c = a["radial_coeffs"]
    lin = (a["species_coeffs"], a["moment_coeffs"], a["n_moments"], with_forces)
    base = batch_predictions(bt, kargs, *lin)
    flat = c.ravel()
    J = np.empty((len(base), flat.size))
    for j in range(flat.size):
        h = fd_step * (1.0 + abs(flat[j]))
        shifted = flat.copy()
        shifted[j] += h
        kargs[0] = shifted.reshape(c.shape)
        J[:, j] = (batch_predictions(bt, kargs, *lin) - base) / h
    return J


def gauss_newton_terms(problem):
    """(H, g) of the projected loss at the problem's current radial and linear coefficients
    (after `problem.loss_at`), summed over configurations (not divided by K)."""
    pot, with_forces = problem.pot, not problem.energy_only
    theta = np.concatenate([pot.species_coeffs, pot.moment_coeffs])
    a = pot.kernel_arrays()
    parts = []
    for k, bt in enumerate(problem.configs):
        row_start, y, w = bt.rows(with_forces)
        if problem.designs is not None:
            X = problem.designs[k]
        else:
            X = batch_design(bt.cfg_atoms, row_start, bt.types, bt.offsets, bt.nbr, bt.vec,
                             *_k(pot), a["n_moments"], with_forces)
        J = radial_jacobian(pot, bt, with_forces)
        Jw = J * w[:, None]
        parts.append((Jw.T @ J, X.T @ Jw, Jw.T @ (X @ theta - y)))
    n_c, n_lin = pot.radial_coeffs.size, len(theta)
    G, B, g = problem.red.ordered_sum(parts, [(n_c, n_c), (n_lin, n_c), (n_c,)])
    free, d, As = jacobi_scaled(problem.normal_matrix, problem.fixed, problem.ridge)
    Bs = B[free] / d[:, None]
    try:
        projected = scipy.linalg.cho_solve(scipy.linalg.cho_factor(As), Bs)
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):   # singular (ridge 0)
        projected = scipy.linalg.lstsq(As, Bs, lapack_driver="gelsd")[0]
    H = G - Bs.T @ projected
    return 0.5 * (H + H.T), g


def levenberg_marquardt(problem, c0, max_iter, progress):
    """Minimise the projected loss over the radial coefficients from c0.

    `progress(c)` is called after every accepted step (it may raise StopIteration).
    Returns (iterations, reason)."""
    c = np.asarray(c0, dtype=float).copy()
    loss = problem.loss_at(c)
    lam = LAMBDA_START
    K = problem.K
    for it in range(max_iter):
        H, g = gauss_newton_terms(problem)
        diag = np.diag(H)
        # coefficients that change no prediction (a species pair never within the cutoff)
        # are left as they are
        active = np.flatnonzero(diag > 1e-14 * max(float(diag.max()), 1e-300))
        Ha, ga = H[np.ix_(active, active)], g[active]
        while True:
            step = np.zeros_like(c)
            try:
                step[active] = -scipy.linalg.solve(Ha + lam * np.diag(diag[active]), ga,
                                                   assume_a="sym")
            except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
                step[:] = np.nan
            if np.isfinite(step).all():
                trial = c + step
                new = problem.loss_at(trial, check=False)
                predicted = -(2.0 * g @ step + step @ H @ step) / K
                if np.isfinite(new) and new < loss:
                    rho = (loss - new) / predicted if predicted > 0 else 0.0
                    lam = (max(lam / 3.0, LAMBDA_MIN) if rho > 0.75 else
                           lam * 2.0 if rho < 0.25 else lam)
                    c, loss = trial, new
                    break
            lam *= 4.0
            if lam > LAMBDA_MAX:
                return it, "no damped Gauss-Newton step lowers the loss"
        try:
            progress(c)
        except StopIteration:
            return it + 1, "stop"
    return max_iter, "max_iter"
