"""Selection of new training configurations by maxvol (MLIP-2's `select-add`; Novikov 2021, sec. 2.4).

From a pool of candidates, rows that increase |det A| are swapped into the active set
greedily, largest |b A^-1| first; after every swap the remaining candidates are re-graded
against the updated A^-1 (recomputed after each swap; B A^-1 by a rank-1 update, recomputed
in full before the selection ends), so a near-duplicate of a configuration just
selected has gamma <= 1 and is never selected too. The selected configurations are those
with a row in the final A. Every swap is checked on A itself (`run_swaps(checked=True)`):
one that would leave A singular, or not grow |det A| by the threshold, is refused, so a
near-singular active set (virtual rows of an underdetermined training set) is handled here
and callers need no fallback. The pool is first put in a canonical order (by a hash of its
content), so that the result does not depend on the order of the candidates file.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .grade import ActiveSet, jacobian_rows
from .maxvol import VIRTUAL, MaxvolState, run_swaps


def content_key(atoms):
    """(hash of numbers, positions, cell, pbc; hash of the info) for a canonical order."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(atoms.cell.array, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(atoms.pbc, dtype=np.int8).tobytes())
    info = repr(sorted((str(k), repr(v)) for k, v in atoms.info.items()))
    return h.hexdigest(), hashlib.sha256(info.encode()).hexdigest()


def canonical_order(images):
    """Indices of `images` sorted by content hash (ties, identical content, by their info)."""
    keys = [content_key(atoms) for atoms in images]
    return sorted(range(len(images)), key=lambda k: keys[k])


@dataclass
class Selection:
    selected: list            # indices into the candidate list, in canonical order
    gamma: np.ndarray         # grade of every candidate against the original active set
    state: MaxvolState        # the active set after the swaps (labels: candidate rows, or -1)
    swaps: int


def select_add(active_set: ActiveSet, candidates, max_count=None, threshold=1.001,
               where="candidates"):
    """Candidates that increase |det A|, greedily by maxvol, at most `max_count` of them.

    A candidate row enters while its |b A^-1| exceeds `threshold`. The rows are those of the
    active set's selection weights (`SelectionWeights`). Deterministic and independent of
    the order of `candidates` (a list of Atoms)."""
    active_set.check_potential()
    order = canonical_order(candidates)
    ordered = [candidates[k] for k in order]
    rows, owners = jacobian_rows(active_set.potential, ordered, active_set.mode, where=where,
                                 weights=active_set.weights)
    gamma = np.zeros(len(candidates))
    if len(rows):
        per_row = active_set.grade_rows(rows)
        per_cfg = np.zeros(len(ordered))
        np.maximum.at(per_cfg, owners[:, 0], per_row)
        gamma[order] = per_cfg
    state = active_set.maxvol_state()
    state.labels[:] = VIRTUAL          # -1: a row that is not a candidate's
    owner_cfg = owners[:, 0]

    def eligible():
        inside = state.labels[state.labels >= 0]
        included = np.zeros(len(ordered), dtype=bool)
        included[owner_cfg[inside]] = True
        if max_count is None or included.sum() < max_count:
            return np.ones(len(rows), dtype=bool)
        return included[owner_cfg]      # the cap is reached: only rows of included candidates

    swaps = 0
    if len(rows) and (max_count is None or max_count > 0):
        swaps = run_swaps(state, rows, np.arange(len(rows)), tol=threshold - 1.0,
                          eligible=eligible, where=where, checked=True)
    inside = state.labels[state.labels >= 0]
    chosen = sorted(set(owner_cfg[inside].tolist()))
    return Selection(selected=[order[k] for k in chosen], gamma=gamma, state=state, swaps=swaps)
