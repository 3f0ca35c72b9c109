"""Sparsification of a training set (Novikov et al. 2021, sec. 5.2.1).

A training set gathered along one trajectory is highly correlated; the configurations that
matter are those the maxvol active set needs. `sparsify` keeps the configurations with a row
in the maxvol active set of the whole set, then checks the promise a user relies on: every
dropped configuration has grade gamma <= threshold with respect to the active set built from
the kept configurations alone (`ActiveSet.from_training` on them). Where that fails (maxvol
of a subset may start from other rows), the dropped configurations that extend that active
set are added back by select-add swaps (MLIP-2's `select-add` with the training set as the
candidates), and the check repeats until it holds. The kept set only grows, so this ends.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grade import SelectionWeights, jacobian_rows
from .maxvol import maxvol, run_swaps


@dataclass
class Sparsification:
    kept: list              # indices into the training set, ascending
    gamma: np.ndarray       # grade of every configuration against the kept set's active set
    rounds: int             # maxvol builds on kept subsets (1 when the first one holds)

    def dropped(self, n):
        """Indices of the n - len(kept) configurations not kept."""
        return sorted(set(range(n)) - set(self.kept))


def _per_config(per_row, owner_cfg, n_configs):
    out = np.zeros(n_configs)
    np.maximum.at(out, owner_cfg, per_row)
    return out


def sparsify(potential, images, mode="configuration", threshold=1.001, tol=1e-7,
             regularization=1e-5, where="training set", weights=None):
    """The configurations of `images` (labelled Atoms) that the maxvol active set needs, such
    that every other one has grade <= `threshold` against the active set of the kept ones
    (with the same `mode`, `tol`, `regularization` and selection `weights` that
    `ActiveSet.from_training` uses; `weights` None: the mode's default rows, given: they set
    the mode, as there).

    Deterministic: the same potential and images in the same order give the same result."""
    weights = SelectionWeights.of(weights, mode, where=f"{where}: selection weights")
    rows, owners = jacobian_rows(potential, images, weights.mode, where=where, weights=weights)
    n = len(images)
    owner_cfg = owners[:, 0]
    if not len(rows):
        return Sparsification(kept=[], gamma=np.zeros(n), rounds=0)
    state = maxvol(rows, tol=tol, regularization=regularization,
                   where=f"{where} ({n} configurations)")
    kept = set(owner_cfg[state.labels[state.labels >= 0]].tolist())
    rounds = 0
    while True:
        rounds += 1
        inside = np.flatnonzero(np.isin(owner_cfg, sorted(kept)))
        # exactly ActiveSet.from_training on the kept configurations: the same rows, the same maxvol
        state = maxvol(rows[inside], tol=tol, regularization=regularization,
                       where=f"{where} (kept {len(kept)} of {n})", warn=False)
        gamma = _per_config(np.abs(rows @ state.Ainv).max(axis=1), owner_cfg, n)
        outside = np.flatnonzero(~np.isin(owner_cfg, sorted(kept)))
        if not len(outside) or gamma[owner_cfg[outside]].max() <= threshold:
            return Sparsification(kept=sorted(kept), gamma=gamma, rounds=rounds)
        # select-add of the dropped configurations into the kept set's active set
        real = state.labels >= 0
        state.labels[real] = inside[state.labels[real]]
        run_swaps(state, rows[outside], outside, tol=threshold - 1.0, where=where)
        added = set(owner_cfg[state.labels[state.labels >= 0]].tolist()) - kept
        if not added:      # cannot happen while a dropped row exceeds the threshold
            raise RuntimeError(f"{where}: sparsification made no progress")
        kept |= added

