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

The start is MLIP-2's (`MaxVol::Reset`, `MaxvolSelection::Select`): A = eps I in B's own
columns, every row of B a candidate. Each swap puts the row of largest |C_ij| into slot j,
and the row it replaces (a virtual eps e_j, or an earlier pick) takes that row's place among
the candidates, as `cblas_dswap` does in `MaxVol::SwapRows`; ties go to the first entry in
row-major order (`cblas_idamax`). A rank-deficient B (the MTP's Jacobian has exact column
dependencies from the homogeneity of the basis functions in the radial coefficients, and
singular values that fall to about eps) leaves "virtual" rows eps e_k in A;
a real row replaces one only where its coefficient on it exceeds 1 + tol. Which rows remain
then depends on eps measured in B's raw columns, so the columns are not rescaled: a rescaled
start (eps e_k in unit-max columns) keeps other virtual rows and other training rows, and
grades that rank differently from MLIP-2's. Without virtual rows rescaling would change
nothing (C is invariant under it, and LU with partial pivoting chooses the same pivots).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

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
        """Recompute A^-1 from A (removes the drift of many rank-1 updates);
        np.linalg.LinAlgError when A is singular or A^-1 not finite."""
        self.Ainv = np.linalg.inv(self.A)
        if not np.isfinite(self.Ainv).all():
            raise np.linalg.LinAlgError("the selected matrix is numerically singular")


def maxvol(B, tol=1e-7, regularization=1e-5, max_swaps=None, refresh_every=None,
           where="matrix", warn=True):
    """Dominant m x m submatrix of the rows of B (n x m) by MLIP-2's rule; a `MaxvolState`.

    Starts from A = `regularization` x I and swaps while max |B A^-1| > 1 + tol (MLIP-2's
    calc-grade: init-threshold 1e-5, swap-threshold 1 + 1e-7). Labels are row indices of B,
    VIRTUAL for a regularising row.
    """
    B = np.asarray(B, dtype=np.float64)
    n, m = B.shape
    if not np.isfinite(B).all():
        raise ValueError(f"{where}: non-finite entries in the Jacobian rows")
    if warn and n < m:
        warnings.warn(f"{where}: {n} rows for {m} parameters: the active set is "
                      f"underdetermined; using MLIP-2's regularised start ({regularization:g} x "
                      f"identity), whose rows real rows replace as maxvol proceeds; at least "
                      f"{m - n} virtual rows remain", UnderdeterminedWarning, stacklevel=2)
    def start():
        return MaxvolState(A=regularization * np.eye(m), Ainv=np.eye(m) / regularization,
                           labels=np.full(m, VIRTUAL, dtype=np.int64),
                           log_det=m * float(np.log(regularization)))

    state = start()
    try:
        run_swaps(state, B, np.arange(n), tol=tol, max_swaps=max_swaps,
                  refresh_every=refresh_every, where=where, exchange=True)
    except np.linalg.LinAlgError:
        # a rank-deficient B with columns many orders of magnitude apart (a small training
        # set in raw MTP columns) can drive the rank-1 updates to a singular A: start again
        # with every swap confirmed on A itself (run_swaps, `checked`)
        state = start()
        run_swaps(state, B, np.arange(n), tol=tol, max_swaps=max_swaps,
                  refresh_every=refresh_every, where=where, exchange=True, checked=True)
    return state


MAX_CONDITION = 1e12    # of A with equilibrated rows and columns: above, A is numerically singular


def equilibrated_condition(A, Ainv):
    """1-norm condition number of D_r A D_c (columns scaled to max 1, then rows to 1-norm 1),
    from A and its inverse, O(m^2): small for virtual rows eps e_k beside rows of large
    entries, large only for numerically dependent rows."""
    col = np.abs(A).max(axis=0)
    dc = 1.0 / np.where(col > 0, col, 1.0)
    S = np.abs(A) * dc
    dr = 1.0 / np.maximum(S.sum(axis=1), np.finfo(float).tiny)
    S *= dr[:, None]
    Sinv = np.abs(Ainv) / dc[:, None] / dr[None, :]          # (D_r A D_c)^-1 = D_c^-1 A^-1 D_r^-1
    return float(S.sum(axis=0).max() * Sinv.sum(axis=0).max())


def _is_virtual(row):
    """A regularising row eps e_k of the underdetermined start (one nonzero entry)."""
    return np.count_nonzero(row) == 1


def _confirm_swap(state, log_det_before, tol):
    """After a swap: a fresh A^-1, and whether |det A| grew by more than 1 + tol with A well
    posed (not singular, equilibrated condition below MAX_CONDITION); sets state.log_det."""
    sign, log_det = np.linalg.slogdet(state.A)
    if sign == 0 or not log_det - log_det_before > np.log1p(tol):
        return False
    try:
        state.refresh()
    except np.linalg.LinAlgError:
        return False
    if not equilibrated_condition(state.A, state.Ainv) < MAX_CONDITION:
        return False
    state.log_det = float(log_det)
    return True


def run_swaps(state, rows, labels, tol=1e-7, max_swaps=None, refresh_every=None,
              eligible=None, where="matrix", exchange=False, checked=False):
    """Swap rows (with their labels) into `state` while max |rows A^-1| > 1 + tol.

    `eligible()` may mask rows (return a boolean mask over `rows`). With `exchange` the row
    leaving A takes the entering row's place among the candidates (MLIP-2's `SwapRows`),
    so that it may return; otherwise it is dropped. Returns the count of swaps.

    `checked` (select_add's setting, and maxvol's second try): every swap is confirmed on the
    matrix itself (`_confirm_swap`: |det A'| / |det A| > 1 + tol by LU, A' not numerically
    singular), and A^-1 and B A^-1 are recomputed after it. With virtual rows eps e_k beside
    rows whose columns differ by many orders of magnitude (raw MTP columns), B A^-1 can put
    a coefficient above 1 on a virtual slot for a row that lies in the span of the real
    rows; swapping it in leaves A singular (np.linalg.inv then fails). Such a swap is
    undone and that (row, slot) pair not proposed again. Costs two LUs per swap; B A^-1
    follows by the rank-1 update, as without `checked`. Without `checked`, a fresh A^-1 that
    is singular or not finite raises np.linalg.LinAlgError (maxvol then starts again
    checked)."""
    n, m = rows.shape
    if exchange:
        if eligible is not None:
            raise ValueError("run_swaps: `eligible` masks rows by position; not with `exchange`")
        rows = np.array(rows, dtype=np.float64)
        labels = np.array(labels, dtype=np.int64)
    max_swaps = 20 * m + 100 if max_swaps is None else max_swaps
    refresh_every = max(m, 16) if refresh_every is None else refresh_every
    if n == 0:
        return 0
    if checked:
        state.refresh()
        log_det_fresh = state.log_det = float(np.linalg.slogdet(state.A)[1])
        refused = np.zeros((n, m), dtype=bool)      # (row, slot) pairs that failed the check
    C = state.coefficients(rows)
    done = 0
    since_refresh = 0
    while True:
        absC = np.abs(C)
        if eligible is not None:
            mask = eligible()
            absC[~mask] = 0.0
        if checked:
            absC[~np.isfinite(absC)] = 0.0
            absC[refused] = 0.0
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
        leaving_row, leaving_label = state.A[j].copy(), state.labels[j]
        if checked:
            before = (leaving_row, leaving_label, state.Ainv.copy(), state.log_det,
                      len(state.swaps))
            state.swap(rows[i], j, labels[i], c=c)
            if not _confirm_swap(state, log_det_fresh, tol):
                state.A[j], state.labels[j], state.Ainv, state.log_det = before[:4]
                del state.swaps[before[4]:]
                refused[i, j] = True                # singular or no gain: not a swap
                if _is_virtual(leaving_row):
                    # b_i's coefficient on slot j is its component off the span of the real
                    # rows over eps; on the other virtual slots that component is smaller
                    # still, and those swaps fail alike (thousands of LUs each otherwise)
                    refused[i, [k for k in range(m) if _is_virtual(state.A[k])]] = True
                continue
            state.swaps[-1] = (int(j), int(labels[i]), float(np.exp(state.log_det - log_det_fresh)))
            log_det_fresh = state.log_det       # A^-1 is fresh; B A^-1 follows as below
        else:
            state.swap(rows[i], j, labels[i], c=c)
        c[j] -= 1.0
        u = C[:, j] / factor                        # C' = B A'^-1 by the same rank-1 update
        if exchange:
            u[i] += 1.0 / factor                    # row i becomes the leaving row (UpdateBinvA)
            rows[i], labels[i] = leaving_row, leaving_label
            if checked:
                refused[i] = False                  # another row at position i now
        C -= np.outer(u, c)
        done += 1
        since_refresh += 1
        if since_refresh >= refresh_every:
            state.refresh()
            C = state.coefficients(rows)
            since_refresh = 0
    return done
