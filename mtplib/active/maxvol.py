"""Maxvol: a dominant (locally maximum-volume) square submatrix of a tall matrix.

Goreinov, Oseledets, Savostyanov, Tyrtyshnikov, Zamarashkin (2010); MLIP-2's `maxvol.cpp`;
Podryabinkin & Shapeev (2017) and Novikov et al. (2021, sec. 2.3) use it to choose the active
set from the Jacobian rows B (one row per configuration or per neighbourhood).

For the selected rows A (m x m), C = B A^-1 expresses every row in the basis of the
selected ones. Replacing selected row j by row i multiplies |det A| by |C_ij|, so while
max |C| > 1 + tol the swap of the maximal entry strictly increases the volume; at the end
every row is a combination of the selected ones with coefficients at most 1 + tol in
absolute value (a "dominant" submatrix), which is what the extrapolation grade measures.
A^-1 and C are kept up to date by the rank-1 Sherman-Morrison formula, O(m^2 + n m) per swap.

Columns are rescaled to unit max-norm before the search. The grade |b A^-1| is invariant
under column scaling (bD (AD)^-1 = b A^-1), so this changes nothing but conditioning.

When B has fewer rows than columns, or its rank is below m (the MTP's Jacobian always has
exact column dependencies from the homogeneity of the basis functions in the radial
coefficients), A starts with "virtual" rows eps e_k in the scaled columns (MLIP-2's
regularised start); a real row replaces a virtual one as soon as its coefficient on it
exceeds 1 + tol, i.e. as soon as it has a component larger than about eps in that direction.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

VIRTUAL = -1


class UnderdeterminedWarning(UserWarning):
    """Fewer Jacobian rows than parameters: the active set keeps virtual rows."""


@dataclass
class MaxvolState:
    """Selected rows `A`, its inverse `Ainv`, and the label of each selected row (VIRTUAL = -1)."""

    A: np.ndarray
    Ainv: np.ndarray
    labels: np.ndarray
    log_det: float = 0.0
    swaps: list = field(default_factory=list)    # (slot, label, |factor|) in order

    @property
    def size(self):
        return self.A.shape[0]

    @property
    def n_virtual(self):
        return int((self.labels == VIRTUAL).sum())

    def coefficients(self, rows):
        """C = rows A^-1 (O(m^2) per row)."""
        return np.asarray(rows) @ self.Ainv

    def swap(self, row, slot, label, c=None):
        """Put `row` into `slot` (Sherman-Morrison); returns the factor by which det A changes.

        `c` = row A^-1 when the caller already has it."""
        c = self.coefficients(row) if c is None else c
        factor = float(c[slot])
        if factor == 0.0:
            raise np.linalg.LinAlgError("swap would make the selected matrix singular")
        d = c.copy()
        d[slot] -= 1.0
        self.Ainv -= np.outer(self.Ainv[:, slot], d / factor)   # (A + e_j (b - a_j)^T)^-1
        self.A[slot] = row
        self.labels[slot] = label
        self.log_det += np.log(abs(factor))
        self.swaps.append((int(slot), int(label), abs(factor)))
        return factor

    def refresh(self):
        """Recompute A^-1 from A (removes the drift of many rank-1 updates)."""
        self.Ainv = np.linalg.inv(self.A)


def _scale(B):
    s = np.abs(B).max(axis=0) if len(B) else np.ones(B.shape[1])
    s[~(s > 0)] = 1.0
    return s


def initial_rows(Bs, regularization):
    """Rows of a well-conditioned start (pivoted QR) and, for a rank r < m, the columns
    that get virtual rows. Returns (selected row indices, virtual columns)."""
    n, m = Bs.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.arange(m)
    _, R, piv = scipy.linalg.qr(Bs.T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    rank = int((diag > regularization).sum())
    rows = np.sort(piv[:rank])
    if rank == m:
        return rows, np.zeros(0, dtype=np.int64)
    if rank == 0:
        return rows, np.arange(m)
    _, _, cols = scipy.linalg.qr(Bs[rows], mode="economic", pivoting=True)
    return rows, np.sort(cols[rank:])


def maxvol(B, tol=1e-7, regularization=1e-5, max_swaps=None, refresh_every=None,
           where="matrix", warn=True):
    """Dominant m x m submatrix of the rows of B (n x m); returns a `MaxvolState`.

    Its labels are row indices of B (VIRTUAL for a regularising row), and A, A^-1 are in
    B's (unscaled) columns. Swaps continue while max |B A^-1| > 1 + tol.
    """
    B = np.asarray(B, dtype=np.float64)
    n, m = B.shape
    if not np.isfinite(B).all():
        raise ValueError(f"{where}: non-finite entries in the Jacobian rows")
    s = _scale(B)
    Bs = B / s
    rows, virtual_cols = initial_rows(Bs, regularization)
    if warn and len(virtual_cols):
        if n < m:
            warnings.warn(f"{where}: {n} rows for {m} parameters: the active set is "
                          f"underdetermined; using MLIP-2's regularised start with "
                          f"{len(virtual_cols)} virtual rows ({regularization:g} x identity), "
                          "replaced by real rows as maxvol proceeds", UnderdeterminedWarning,
                          stacklevel=2)
    A = np.zeros((m, m))
    labels = np.full(m, VIRTUAL, dtype=np.int64)
    slots_real = np.arange(len(rows))
    A[slots_real] = Bs[rows]
    labels[slots_real] = rows
    for k, col in enumerate(virtual_cols):
        A[len(rows) + k, col] = regularization
    state = MaxvolState(A=A, Ainv=np.linalg.inv(A), labels=labels)
    state.log_det = float(np.linalg.slogdet(A)[1])
    run_swaps(state, Bs, np.arange(n), tol=tol, max_swaps=max_swaps, refresh_every=refresh_every,
              where=where)
    # back to B's columns: A = A_s D, A^-1 = D^-1 A_s^-1
    state.A = state.A * s
    state.Ainv = state.Ainv / s[:, None]
    state.log_det += float(np.log(s).sum())
    return state


def run_swaps(state, rows, labels, tol=1e-7, max_swaps=None, refresh_every=None,
              eligible=None, where="matrix"):
    """Swap rows (with their labels) into `state` while max |rows A^-1| > 1 + tol.

    `eligible(C_abs_max_per_row)` may mask rows (return a boolean mask). Returns the count."""
    n, m = rows.shape
    max_swaps = 20 * m + 100 if max_swaps is None else max_swaps
    refresh_every = max(m, 16) if refresh_every is None else refresh_every
    if n == 0:
        return 0
    C = state.coefficients(rows)
    done = 0
    since_refresh = 0
    while True:
        absC = np.abs(C)
        if eligible is not None:
            mask = eligible()
            absC[~mask] = 0.0
        flat = int(np.argmax(absC))
        i, j = divmod(flat, m)
        if absC[i, j] <= 1.0 + tol:
            if since_refresh == 0:
                break
            state.refresh()                 # confirm convergence with a fresh inverse
            C = state.coefficients(rows)
            since_refresh = 0
            continue
        if done >= max_swaps:
            warnings.warn(f"{where}: maxvol stopped after {done} swaps with max |B A^-1| = "
                          f"{absC[i, j]:.6g} > 1 + {tol:g}", RuntimeWarning, stacklevel=3)
            break
        c = C[i].copy()
        factor = c[j]
        state.swap(rows[i], j, labels[i], c=c)
        c[j] -= 1.0
        C -= np.outer(C[:, j], c / factor)          # C' = B A'^-1 by the same rank-1 update
        done += 1
        since_refresh += 1
        if since_refresh >= refresh_every:
            state.refresh()
            C = state.coefficients(rows)
            since_refresh = 0
    return done
