"""The loss of eq. 7 (Novikov et al. 2021) and its gradients, summed over configurations.

    L = (1/K) sum_cfg [ w_E (E - E*)^2 + w_F sum_atoms |F - F*|^2 + w_S sum_ab (W - W*)_ab^2 ]

with the per-configuration weights of `data.config_weights` (W = stress * volume, eV) and K
the number of configurations. Configurations are packed into batches (one CSR neighbour list
each, a fixed split by size) and the kernels run in parallel over configurations; sums run
over configurations in their order, then over ranks (`parallel.Reducer`), so a serial run is
reproducible bit for bit.
"""
from __future__ import annotations

import numpy as np

from ..kernels.training import (batch_design, batch_evaluate, batch_pair_tangents,
                                batch_radial_gradient, design_rows_count, linear_design)

BATCH_BYTES = 64 << 20       # design rows held at once
BATCH_CONFIGS = 16           # configurations per batch: the unit of work and of reductions


class Batch:
    """Consecutive configurations in one CSR neighbour list, with targets and weights."""

    def __init__(self, configs):
        self.configs = configs
        n = np.array([c.n_atoms for c in configs], dtype=np.int64)
        self.n_atoms = n
        self.cfg_atoms = np.concatenate([[0], np.cumsum(n)]).astype(np.int64)
        pair_counts = np.array([len(c.nbr) for c in configs], dtype=np.int64)
        pair_base = np.concatenate([[0], np.cumsum(pair_counts)])
        self.types = np.concatenate([c.types for c in configs]).astype(np.int64)
        self.offsets = np.concatenate(
            [c.offsets[:-1] + pair_base[k] for k, c in enumerate(configs)]
            + [[pair_base[-1]]]).astype(np.int64)
        self.nbr = np.concatenate([c.nbr + self.cfg_atoms[k] for k, c in enumerate(configs)]
                                  ).astype(np.int64)
        self.vec = np.ascontiguousarray(np.concatenate([c.vec.reshape(-1, 3) for c in configs]))
        self.energy = np.array([c.energy for c in configs])
        self.w_energy = np.array([c.w_energy for c in configs])
        self.w_forces = np.array([c.w_forces for c in configs])
        self.w_stress = np.array([c.w_stress for c in configs])
        self.has_forces = np.array([c.forces is not None for c in configs])
        self.forces = np.concatenate([c.forces if c.forces is not None else np.zeros((c.n_atoms, 3))
                                      for c in configs])
        self.virial = np.array([c.virial if c.virial is not None else np.zeros((3, 3))
                                for c in configs]).reshape(-1, 3, 3)
        self.atom_cfg = np.repeat(np.arange(len(configs)), n)
        self._rows = {}

    def rows(self, with_forces):
        """(row_start, y, w) of the stacked design rows."""
        if with_forces not in self._rows:
            counts = np.array([design_rows_count(int(k), with_forces) for k in self.n_atoms])
            row_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            y, w = [], []
            for k, c in enumerate(self.configs):
                y.append([c.energy])
                w.append([c.w_energy])
                if with_forces:
                    y.append(self.forces[self.cfg_atoms[k]:self.cfg_atoms[k + 1]].ravel())
                    w.append(np.full(3 * c.n_atoms, c.w_forces))
                    y.append(self.virial[k].T.ravel())     # design row 3b+a is W[a, b]
                    w.append(np.full(9, c.w_stress))
            self._rows[with_forces] = (row_start, np.concatenate(y), np.concatenate(w))
            if with_forces:
                first = row_start[:-1]
                self.force_rows = (np.repeat(first + 1 - 3 * self.cfg_atoms[:-1], 3 * self.n_atoms)
                                   + np.arange(3 * len(self.types)))
                self.virial_rows = (first + 1 + 3 * self.n_atoms)[:, None] + np.arange(9)
        return self._rows[with_forces]

    def residuals(self, r):
        """dE (n_cfg,), dF (n_atoms, 3), dW (n_cfg, 3, 3) from residuals of the design rows."""
        row_start = self._rows[True][0]
        dE = r[row_start[:-1]]
        dF = r[self.force_rows].reshape(-1, 3)
        dW = r[self.virial_rows].reshape(-1, 3, 3).transpose(0, 2, 1)
        return dE, dF, dW


def batch_bounds(n_atoms, n_lin):
    """(start, stop) of consecutive batches of at most BATCH_CONFIGS configurations whose
    design rows fit BATCH_BYTES; depends on the data only (not on ranks or threads)."""
    bounds, start, rows = [], 0, 0
    for k, n in enumerate(n_atoms):
        r = design_rows_count(int(n), True)
        if k > start and ((rows + r) * n_lin * 8 > BATCH_BYTES or k - start >= BATCH_CONFIGS):
            bounds.append((start, k))
            start, rows = k, 0
        rows += r
    if len(n_atoms) > start:
        bounds.append((start, len(n_atoms)))
    return bounds


def pack(configs, n_lin):
    """Split configurations, in order, into `Batch`es (see `batch_bounds`)."""
    return [Batch(configs[a:b]) for a, b in batch_bounds([c.n_atoms for c in configs], n_lin)]


class _Serial:
    def ordered_sum(self, parts, shapes):
        acc = [np.zeros(s) for s in shapes]
        for part in parts:
            for k, x in enumerate(part):
                acc[k] += x
        return [a if len(s) else float(a) for a, s in zip(acc, shapes)]


def _k(potential):
    a = potential.kernel_arrays()
    return (a["radial_coeffs"], a["scaling"], a["min_dist"], a["max_dist"], a["repulsive"],
            a["basic_mu"], a["basic_ang"], a["ang_abc"], a["times"], a["mapping"])


def config_design(potential, cfg, with_forces=True):
    """X (rows: E, F (3N), W (9, row 3b+a = W[a, b])) in theta_lin = [species, moment coeffs]."""
    a = potential.kernel_arrays()
    return linear_design(cfg.types, cfg.offsets, cfg.nbr, cfg.vec, *_k(potential),
                         a["n_moments"], with_forces)


def normal_equations(potential, batches, with_forces=True, keep=None, reducer=None):
    """Sum over configurations of X^T W X, X^T W y, y^T W y (weights of eq. 7).

    `keep`: a list that receives each batch's design X (for residuals without re-evaluation).
    `reducer`: sums over this rank's and other ranks' batches in global order (parallel.Reducer)."""
    a = potential.kernel_arrays()
    n_lin = potential.species_count + potential.alpha_scalar_moments
    parts = []
    for batch in batches:
        row_start, y, w = batch.rows(with_forces)
        X = batch_design(batch.cfg_atoms, row_start, batch.types, batch.offsets, batch.nbr,
                         batch.vec, *_k(potential), a["n_moments"], with_forces)
        Xw = X * w[:, None]
        parts.append((Xw.T @ X, Xw.T @ y, float((w * y) @ y)))
        if keep is not None:
            keep.append(X)
    return (reducer or _Serial()).ordered_sum(parts, [(n_lin, n_lin), (n_lin,), ()])


def jacobi_scaled(A, fixed=None, ridge=0.0):
    """The free columns of a normal matrix A (not in `fixed`, and seen in the data:
    diag A > 0; a species absent from the data has zero columns), their Jacobi scales
    d = sqrt(diag A) and D^-1 A D^-1 + ridge I on them: (idx, d, As)."""
    free = np.diag(A) > 0
    for k in fixed or {}:
        free[k] = False
    idx = np.flatnonzero(free)
    d = np.sqrt(np.diag(A)[idx])
    As = A[np.ix_(idx, idx)] / np.outer(d, d)
    As[np.diag_indices_from(As)] += ridge
    return idx, d, As


def loss_terms(potential, batches, radial_grad=True, energy_only=False, designs=None,
               reducer=None):
    """Summed (not averaged) loss, its gradient w.r.t. the radial coefficients at fixed linear
    coefficients (None unless radial_grad), and error sums for progress lines.

    Returns (loss, grad_radial, stats) with stats = [sum (dE/N)^2, n_E, sum dF^2, n_F].
    `energy_only` drops the force and stress terms (for the energy-only radial stage).
    `designs`: the batches' design rows at the current radial coefficients (from
    `normal_equations(..., keep=)`), which give the residuals without evaluating.
    """
    a = potential.kernel_arrays()
    parts = []
    theta = np.concatenate([potential.species_coeffs, potential.moment_coeffs])
    for k, bt in enumerate(batches):
        if designs is not None:
            _, y, _ = bt.rows(True)
            de, dF, dW = bt.residuals(designs[k] @ theta - y)
        else:
            energy, forces, virial = batch_evaluate(
                bt.cfg_atoms, bt.types, bt.offsets, bt.nbr, bt.vec, *_k(potential),
                a["species_coeffs"], a["moment_coeffs"], a["n_moments"])
            de = energy - bt.energy
            dF = forces - bt.forces
            dW = 0.5 * (virial + virial.transpose(0, 2, 1)) - bt.virial
        fmask = bt.has_forces[bt.atom_cfg]
        stats = np.array([float(((de / bt.n_atoms) ** 2).sum()), len(de),
                          float((dF[fmask] ** 2).sum()), 3 * int(fmask.sum())])
        loss = float((bt.w_energy * de * de).sum())
        if energy_only:
            force_coef = np.zeros_like(dF)
            virial_coef = np.zeros_like(dW)
        else:
            wf = bt.w_forces[bt.atom_cfg]
            loss += float((wf[:, None] * dF * dF).sum())
            loss += float((bt.w_stress[:, None, None] * dW * dW).sum())
            force_coef = 2.0 * wf[:, None] * dF
            virial_coef = 2.0 * bt.w_stress[:, None, None] * dW
        grad = np.zeros(potential.radial_coeffs.shape)
        if radial_grad:
            tangent = batch_pair_tangents(bt.cfg_atoms, bt.offsets, bt.nbr, bt.vec,
                                          force_coef, virial_coef)
            grad = batch_radial_gradient(
                bt.cfg_atoms, bt.types, bt.offsets, bt.nbr, bt.vec, *_k(potential),
                a["moment_coeffs"], a["n_moments"], 2.0 * bt.w_energy * de, tangent)
        parts.append((loss, grad, stats))
    loss, grad, stats = (reducer or _Serial()).ordered_sum(
        parts, [(), potential.radial_coeffs.shape, (4,)])
    return loss, (grad if radial_grad else None), stats


def loss_and_gradient(potential, configs):
    """Mean loss (eq. 7 over K configurations) and its gradient w.r.t. all parameters,
    theta = [radial_coeffs.ravel(), species_coeffs, moment_coeffs] (MTPotential order).

    The linear part is 2 (A theta - b) / K from the normal equations."""
    K = len(configs)
    batches = pack(configs, potential.species_count + potential.alpha_scalar_moments)
    loss, grad_radial, _ = loss_terms(potential, batches, radial_grad=True)
    A, b, _ = normal_equations(potential, batches, with_forces=True)
    theta_lin = np.concatenate([potential.species_coeffs, potential.moment_coeffs])
    grad_lin = 2.0 * (A @ theta_lin - b)
    return loss / K, np.concatenate([grad_radial.ravel(), grad_lin]) / K
