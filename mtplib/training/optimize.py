"""Fitting an MTP by variable projection (VarPro).

For fixed radial coefficients c the loss (eq. 7) is quadratic in theta_lin = [species_coeffs,
moment_coeffs]; we solve those exactly (ridge-regularised normal equations) and minimise
the projected loss L(c, theta_lin*(c)) over c with L-BFGS-B. By the envelope theorem its
gradient is dL/dc at fixed theta_lin*, which `loss.loss_terms` computes by one
forward-over-reverse pass per configuration (no force Jacobian w.r.t. c). Or, with
radial_optimizer='lm', by Levenberg-Marquardt with Kaufman's step (`levenberg`).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.optimize

from .data import TrainingDataError, apply_forces_cap, image_labels, prepare
from .levenberg import levenberg_marquardt
from .loss import Batch, batch_bounds, jacobi_scaled, loss_terms, normal_equations
from .parallel import Reducer

DEFAULT_WEIGHTS = (1.0, 0.01, 0.001)
RADIAL_OPTIMIZERS = ("lbfgs", "lm")
KEEP_DESIGN_BYTES = 1 << 30     # keep the design rows (residuals without re-evaluating) up to this
# The default stopping rule (`RelativeStop`): stop once the loss fell by less than
# DEFAULT_TOL of itself over the last STOP_WINDOW iterations, i.e. past the knee of the
# loss curve, where further iterations still lower the training loss slowly but no longer
# the test errors much (benchmarks/bench_train.py); max_iter stays a cap.
STOP_WINDOW = 10                # iterations over which the relative loss decrease is measured
DEFAULT_TOL = 0.25
DEFAULT_MAX_ITER = 300


class TrainingDiverged(RuntimeError):
    pass


class RelativeStop:
    """Stop when the loss fell by less than `tol` * loss over the last `window` iterations.

    The criterion is relative, so it does not depend on the scale of the loss. (L-BFGS-B's
    own ftol test, (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= ftol, is absolute for losses
    below 1: with MTP losses of 1e-5..1e-3 it stopped fits after tens of iterations at
    several times the loss other seeds reached.)"""

    def __init__(self, tol, window=STOP_WINDOW):
        self.tol = tol
        self.window = window
        self.losses = []

    def converged(self, loss):
        self.losses.append(loss)
        if len(self.losses) <= self.window:
            return False
        before = self.losses[-1 - self.window]
        return before - loss <= self.tol * abs(loss)


def initial_radial_coeffs(potential, seed):
    """Random radial coefficients: f_mu ~ Q_mu plus U(-0.1, 0.1) noise on every coefficient.

    (MLIP-2 starts from small random radial coefficients; a dominant diagonal makes the
    radial functions distinct from the first step.)"""
    shape = (potential.species_count, potential.species_count, potential.radial_funcs_count,
             potential.radial_basis_size)
    rng = np.random.default_rng(seed)
    c = rng.uniform(-0.1, 0.1, shape)
    for mu in range(shape[2]):
        c[:, :, mu, min(mu, shape[3] - 1)] += 1.0
    return c


def solve_linear(A, b, fixed=None, ridge=1e-10, refine=2):
    """argmin theta^T A theta - 2 b^T theta + ridge |D theta|^2 with D = sqrt(diag A)
    (Jacobi-scaled ridge), then `refine` steps of iterated Tikhonov towards the unregularised
    solution, x += (As + ridge I)^-1 (bs - As x): a direction of eigenvalue l keeps the
    bias (ridge / (l + ridge))^(refine + 1), so well-determined directions are solved
    exactly and near-null ones stay damped. The VarPro gradient (envelope theorem) is exact
    only at the exact minimiser: a 1e-10 ridge alone left it wrong in sign near convergence
    and stalled the optimiser. `fixed` maps column index -> value held fixed."""
    theta = np.zeros(len(b))
    held = np.zeros(len(b), dtype=bool)
    for k, v in (fixed or {}).items():
        theta[k] = v
        held[k] = True
    rhs = b - A[:, held] @ theta[held]
    idx, d, As = jacobi_scaled(A, fixed, ridge)
    if not len(idx):
        return theta
    bs = rhs[idx] / d
    try:
        factor = scipy.linalg.cho_factor(As, check_finite=True)
        x = scipy.linalg.cho_solve(factor, bs)
        As[np.diag_indices_from(As)] -= ridge
        for _ in range(refine):
            x = x + scipy.linalg.cho_solve(factor, bs - As @ x)
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError, ValueError):
        x = scipy.linalg.lstsq(As, bs, lapack_driver="gelsd")[0]
    theta[idx] = x / d
    return theta


class VarProProblem:
    """The projected loss over radial coefficients, on this rank's share of configurations."""

    def __init__(self, potential, configs, n_total, reducer, fixed=None, ridge=1e-10,
                 energy_only=False):
        self.pot = potential
        self.configs = configs
        self.K = n_total
        self.red = reducer
        self.fixed = fixed
        self.ridge = ridge
        self.energy_only = energy_only
        self.shape = potential.radial_coeffs.shape
        self.cache = {}
        self.best = None                  # (loss, c, theta_lin)
        n_lin = potential.species_count + potential.alpha_scalar_moments
        rows = reducer.sum(float(sum(b.rows(True)[0][-1] for b in configs)))[0]  # same on all ranks
        self.keep_designs = rows * n_lin * 8 <= KEEP_DESIGN_BYTES
        self.designs = None

    def solve(self, c, with_forces=True):
        self.pot.radial_coeffs = c.reshape(self.shape).copy()
        self.designs = [] if (with_forces and self.keep_designs) else None
        A, b, yy = normal_equations(self.pot, self.configs, with_forces=with_forces,
                                    keep=self.designs, reducer=self.red)
        self.normal_matrix = A
        theta = solve_linear(A, b, self.fixed, self.ridge)
        S = self.pot.species_count
        self.pot.species_coeffs = theta[:S].copy()
        self.pot.moment_coeffs = theta[S:].copy()
        return theta

    def _record(self, c, theta, loss, grad, stats):
        rmse_e = math.sqrt(stats[0] / max(stats[1], 1)) * 1000.0
        rmse_f = math.sqrt(stats[2] / max(stats[3], 1))
        self.cache = {c.tobytes(): (loss, grad, rmse_e, rmse_f)}
        if self.best is None or loss < self.best[0]:
            self.best = (loss, c.copy(), theta.copy())

    def loss_at(self, c, check=True):
        """The projected loss at c (no gradient); leaves the linear coefficients and design
        rows of c in place. A non-finite loss raises TrainingDiverged, or with check=False
        is returned as inf."""
        theta = self.solve(c, with_forces=not self.energy_only)
        loss, _, stats = loss_terms(self.pot, self.configs, radial_grad=False,
                                    energy_only=self.energy_only, designs=self.designs,
                                    reducer=self.red)
        loss /= self.K
        if not math.isfinite(loss):
            if check:
                raise TrainingDiverged(f"non-finite loss {loss} at radial coefficients "
                                       f"|c| = {np.linalg.norm(c):.3g}")
            return math.inf
        self._record(c, theta, loss, None, stats)
        return loss

    def __call__(self, c):
        key = c.tobytes()
        if key in self.cache and self.cache[key][1] is not None:   # (loss_at keeps no gradient)
            return self.cache[key][:2]
        theta = self.solve(c, with_forces=not self.energy_only)
        loss, grad, stats = loss_terms(self.pot, self.configs, radial_grad=True,
                                       energy_only=self.energy_only, designs=self.designs,
                                       reducer=self.red)
        # (the 1e-10 Jacobi-scaled ridge is left out of the objective: negligible)
        loss, grad = loss / self.K, grad.ravel() / self.K
        if not (math.isfinite(loss) and np.isfinite(grad).all()):
            raise TrainingDiverged(f"non-finite loss {loss} at radial coefficients "
                                   f"|c| = {np.linalg.norm(c):.3g}")
        self._record(c, theta, loss, grad, stats)
        return loss, grad


def _load_batches(images, potential, weights, scaling, labels, forces_cap, log, reducer):
    """This rank's batches: global batches (fixed by the data) split over ranks in blocks."""
    labels = labels or image_labels(images)
    images, labels, _ = apply_forces_cap(images, forces_cap, labels,
                                         log if reducer.is_root else None)
    if not images:
        prepare([], potential)                       # raises: empty training set
    n_lin = potential.species_count + potential.alpha_scalar_moments
    bounds = reducer.share(batch_bounds([len(a) for a in images], n_lin))
    batches = []
    for a, b in bounds:
        batches.append(Batch(prepare(images[a:b], potential, weights, scaling, labels[a:b])))
    return batches, len(images)


def radial_subset(n_configs, fraction, seed):
    """Sorted indices of the round(fraction * n) configurations (at least 1) on which the
    radial coefficients are optimised: a permutation seeded by `seed`."""
    _check_radial_fraction(fraction)
    n = max(1, int(round(fraction * n_configs)))
    return np.sort(np.random.default_rng([seed, 0x5AB]).permutation(n_configs)[:n])


def _check_radial_fraction(fraction):
    if not 0.0 < fraction <= 1.0:
        raise TrainingDataError(f"radial_fraction must be in (0, 1], got {fraction}")


def _capped(images, labels, forces_cap):
    labels = labels or image_labels(images)
    kept, kept_labels, _ = apply_forces_cap(images, forces_cap, labels, None)
    return kept, kept_labels


def fit(train_images, init_potential, *, weights=DEFAULT_WEIGHTS, scaling="vibrations", seed=0,
        max_iter=DEFAULT_MAX_ITER, optimize_radial=True, energy_only_radial=False, isolated_energies=None,
        forces_cap=None, ridge=1e-10, warm_start=None, tol=DEFAULT_TOL, stop_window=STOP_WINDOW,
        labels=None, comm="auto",
        log=print, history=None, radial_fraction=1.0, radial_optimizer="lbfgs"):
    """Fit an MTP to labelled configurations; returns a new trained MTPotential.

    weights: (w_e, w_f, w_s) of eq. 7; scaling: 'vibrations' | 'structures' | 'molecules'.
    optimize_radial=False: seeded random radial coefficients and one linear solve (fast).
    energy_only_radial: the radial coefficients minimise the energy term only; the final
    linear solve uses all weights. isolated_energies: {element: eV} fixes species_coeffs.
    warm_start: keep init_potential's radial coefficients (default: when it has them).
    comm: an mpi4py communicator, None (serial) or 'auto' (COMM_WORLD under mpiexec).
    history: a list that receives one dict per iteration (iteration, loss, energy_rmse,
    force_rmse on the radial subset, and that iteration's radial_coeffs).
    Stopping rule: the radial optimiser stops when the loss fell by less than tol * loss
    over the last stop_window iterations (`RelativeStop`: (L[k - w] - L[k]) <= tol * L[k]),
    at max_iter (a cap), or when no line search step lowers the loss; the reason is logged.
    The default (tol DEFAULT_TOL, window STOP_WINDOW) stops past the knee of the loss curve,
    where the test errors have levelled off; a small tol (e.g. 1e-7) runs to max_iter.
    radial_fraction: the radial coefficients are optimised on this fraction of the
    configurations (a seeded choice, see `radial_subset`); the final linear solve uses all.
    radial_optimizer: 'lbfgs' (L-BFGS-B on the projected loss, one gradient pass per
    evaluation) or 'lm' (Levenberg-Marquardt with Kaufman's VarPro step, `levenberg`: one
    evaluation per radial coefficient per iteration, far fewer iterations near a minimum).
    """
    _check_radial_fraction(radial_fraction)
    if radial_optimizer not in RADIAL_OPTIMIZERS:
        raise TrainingDataError(f"radial_optimizer must be one of {RADIAL_OPTIMIZERS}, "
                                f"got {radial_optimizer!r}")
    red = Reducer(comm)
    say = log if (red.is_root and log is not None) else (lambda *a, **k: None)
    pot = init_potential.copy()
    if warm_start is None:
        warm_start = pot.radial_coeffs is not None
    if not warm_start or pot.radial_coeffs is None:
        pot.radial_coeffs = initial_radial_coeffs(pot, seed)
    S = pot.species_count
    pot.species_coeffs = np.zeros(S) if pot.species_coeffs is None else np.asarray(pot.species_coeffs, float)
    pot.moment_coeffs = (np.zeros(pot.alpha_scalar_moments) if pot.moment_coeffs is None
                         else np.asarray(pot.moment_coeffs, float))
    fixed = None
    if isolated_energies:
        if not pot.species:
            raise TrainingDataError("isolated_energies need a potential that names its species")
        fixed = {}
        for k, el in enumerate(pot.species):
            if el in isolated_energies:
                fixed[k] = float(isolated_energies[el])
        unknown = sorted(set(isolated_energies) - set(pot.species))
        if unknown:
            raise TrainingDataError(f"isolated_energies: species {unknown} not in the potential "
                                    f"(species {pot.species})")

    batches, K = _load_batches(train_images, pot, weights, scaling, labels, forces_cap, say, red)
    say(f"training on {K} configurations ({sum(len(b.types) for b in batches)} atoms on rank 0), "
        f"{pot.parameter_count} parameters, weights {tuple(weights)}, scaling {scaling}, "
        f"{red.size} rank(s)")

    problem = VarProProblem(pot, batches, K, red, fixed, ridge, energy_only=energy_only_radial)
    c0 = pot.radial_coeffs.ravel().copy()
    if optimize_radial and max_iter > 0:
        if radial_fraction < 1.0:
            kept, kept_labels = _capped(train_images, labels, forces_cap)
            subset = radial_subset(len(kept), radial_fraction, seed)
            sub_batches, K_sub = _load_batches([kept[i] for i in subset], pot, weights, scaling,
                                               [kept_labels[i] for i in subset], None,
                                               lambda *a, **k: None, red)
            say(f"radial coefficients optimised on {K_sub} of {K} configurations "
                f"(radial_fraction {radial_fraction:g})")
            problem = VarProProblem(pot, sub_batches, K_sub, red, fixed, ridge,
                                    energy_only=energy_only_radial)
        step = [0]
        c0_shape = pot.radial_coeffs.shape
        stop = RelativeStop(tol, stop_window)

        def progress(ck):
            step[0] += 1
            loss, _, rmse_e, rmse_f = problem.cache.get(ck.tobytes(), (np.nan,) * 4)
            if history is not None:
                history.append(dict(iteration=step[0], loss=loss, energy_rmse=rmse_e,
                                    force_rmse=rmse_f, radial_coeffs=ck.reshape(c0_shape).copy()))
            say(f"iter {step[0]:4d}  loss {loss:.6e}  E rmse {rmse_e:.4f} meV/atom  "
                f"F rmse {rmse_f:.5f} eV/A")
            if stop.converged(loss):
                raise StopIteration

        stopped = f"loss fell by less than {tol:g} of itself over {stop.window} iterations"
        try:
            if radial_optimizer == "lm":
                iters, why = levenberg_marquardt(problem, c0, max_iter, progress)
                say(f"Levenberg-Marquardt stopped after {iters} iterations: "
                    f"{stopped if why == 'stop' else why}")
            else:
                # L-BFGS-B's own ftol and gtol are off (0: only a step with no decrease or an
                # exactly zero gradient ends it); `stop` decides, on the relative loss decrease
                res = scipy.optimize.minimize(problem, c0, jac=True, method="L-BFGS-B",
                                              callback=progress,
                                              options=dict(maxiter=max_iter, maxcor=20, ftol=0.0,
                                                           gtol=0.0, maxls=30))
                why = (stopped if res.status == 99 or "StopIteration" in str(res.message)
                       else f"{res.message}")
                say(f"L-BFGS-B stopped after {step[0]} iterations ({res.nfev} loss and "
                    f"gradient evaluations): {why}")
        except TrainingDiverged as exc:
            say(f"training diverged ({exc}); keeping the last good potential")
        c_final = problem.best[1] if problem.best is not None else c0
    else:
        c_final = c0
    # final linear solve with all weights, on all configurations
    problem = VarProProblem(pot, batches, K, red, fixed, ridge)
    problem.solve(c_final, with_forces=True)
    # residuals from the design rows of that solve when kept (no evaluation kernel to compile)
    loss, _, stats = loss_terms(pot, batches, radial_grad=False, designs=problem.designs,
                                reducer=red)
    say(f"final  loss {loss / K:.6e}  E rmse {math.sqrt(stats[0] / max(stats[1], 1)) * 1000:.4f} "
        f"meV/atom  F rmse {math.sqrt(stats[2] / max(stats[3], 1)):.5f} eV/A")
    pot.source = "<trained>"
    return pot
