"""Query by committee: the spread of forces across several potentials (Seung et al. 1992).

The criterion is the largest, over atoms, standard deviation of the force vector across
the committee: sigma_i = sqrt(mean_k |F_i^k - mean_k F_i^k|^2). It needs no active set
and can be used instead of, or beside, the extrapolation grade.
"""
from __future__ import annotations

import numpy as np

from ..potential import MTPInputError, MTPotential


class Committee:
    """A list of potentials evaluated together; the first one drives dynamics."""

    def __init__(self, potentials):
        potentials = [p if isinstance(p, MTPotential) else MTPotential.load(p) for p in potentials]
        if len(potentials) < 2:
            raise MTPInputError(f"a committee needs at least 2 potentials, got {len(potentials)}")
        self.potentials = potentials

    def __len__(self):
        return len(self.potentials)

    def forces(self, atoms, where="structure"):
        """(K, n, 3) forces of every member."""
        return np.stack([p.evaluate(atoms, where=where)["forces"] for p in self.potentials])

    def deviation(self, atoms, where="structure", forces=None):
        """Per-atom force standard deviation (n,) and its maximum.

        `forces` (K, n, 3) may be given when some members were already evaluated."""
        forces = self.forces(atoms, where) if forces is None else np.asarray(forces)
        sigma = force_std(forces)
        return sigma, float(sigma.max()) if len(sigma) else 0.0

    def grade(self, atoms, where="structure"):
        """max_i sigma_i; also stored in atoms.info["force_std"] and atoms.arrays["force_std"]."""
        sigma, worst = self.deviation(atoms, where)
        atoms.info["force_std"] = worst
        atoms.arrays["force_std"] = sigma
        return worst


def force_std(forces):
    """sigma_i = sqrt(mean_k |F_i^k - <F_i>|^2) from forces (K, n, 3)."""
    forces = np.asarray(forces, dtype=np.float64)
    dev = forces - forces.mean(axis=0)
    return np.sqrt((dev ** 2).sum(axis=2).mean(axis=0))
