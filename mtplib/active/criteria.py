"""Selection criteria of learning on the fly: one class per criterion, behind one interface.

A criterion turns the results of a graded step into one number (its `name` is the key under
which candidates record it), selects a configuration as a candidate above `select` and stops
the run at `break_`. MD and relaxation (`Watcher`) ask every criterion of their
`Thresholds`; the selection stage ranks a criterion's candidates with :meth:`Criterion.rank`.
A new criterion is one subclass here (plus its thresholds in the workflow's schema).

* :class:`ExtrapolationGrade`: the extrapolation grade gamma of the active set (D-optimality,
  Novikov et al. 2021, eq. 13), computed in the same kernel pass as the forces.
* :class:`CommitteeSpread`: the largest per-atom spread of forces across a committee (eV/Å).
* :class:`CloseApproach`: the shortest interatomic distance (Å), selected below a distance
  and stopping the run below another (the potential's min_dist, below which it is not trained).
"""
from __future__ import annotations

import numpy as np


class Criterion:
    """One selection criterion: `select` and `break_` thresholds (None: never)."""

    name = "criterion"
    unit = ""
    label = "criterion"
    every_step = False      # checked at every step (not only at graded ones) when it selects

    def __init__(self, select: float | None = None, break_: float | None = None):
        self.select = select
        self.break_ = break_

    def value(self, results: dict, atoms) -> float:
        """The criterion's number for a graded step (nan when not available)."""
        raise NotImplementedError

    def selects(self, value: float) -> bool:
        return self.select is not None and bool(np.isfinite(value)) and value > self.select

    def breaks(self, value: float) -> bool:
        return self.break_ is not None and bool(np.isfinite(value)) and value >= self.break_

    def break_message(self, step: int, value: float) -> str:
        return (f"step {step}: {self.label} {value:.4g}{self.unit} >= {self.break_:g}{self.unit}")

    def rank(self, pool) -> list[int]:
        """Indices of the candidates this criterion selects, most extreme first."""
        scored = [(-float(a.info.get(self.name, np.nan)), k) for k, a in enumerate(pool)]
        return [k for v, k in sorted(scored) if self.selects(-v)]


class ExtrapolationGrade(Criterion):
    """gamma > select: a candidate; gamma >= break_: stop. With `trust` (DP-GEN's upper trust
    level), a configuration above it is not a candidate: so far outside the training data it
    is often unphysical, and labelling it teaches the potential little."""

    name, label = "gamma", "extrapolation grade"

    def __init__(self, select=None, break_=None, trust=None):
        super().__init__(select, break_)
        self.trust = trust

    def selects(self, value):
        return super().selects(value) and (self.trust is None or value <= self.trust)

    def untrusted(self, value) -> bool:
        """Above select but beyond the trust level: seen, not selected."""
        return super().selects(value) and self.trust is not None and value > self.trust

    def value(self, results, atoms):
        return float(results.get("gamma", np.nan))

    def break_message(self, step, value):
        return f"step {step}: extrapolation grade {value:.4g} >= gamma_break = {self.break_:g}"


class CommitteeSpread(Criterion):
    name, label, unit = "force_std", "committee force spread", " eV/Å"

    def value(self, results, atoms):
        return float(results.get("force_std", np.nan))


class CloseApproach(Criterion):
    """The shortest interatomic distance: below `select` (Å) a candidate, below `break_` a stop.

    Below the potential's min_dist its radial basis is frozen and MLIP-2's repulsive core
    (RBChebyshev_repuls) switches on with a force of 10^5 exp(-10 (min_dist - 1)) eV/Å, tens of
    thousands at a min_dist near 1 Å: a pair that the potential wrongly pulls in crosses it and
    the run blows up within a step, while gamma, which sees only the frozen basis there, stays
    low. So a configuration approaching min_dist is selected (its label teaches the repulsion
    above min_dist) and the run stops before a pair crosses it."""

    name, label, unit = "shortest_distance", "shortest interatomic distance", " Å"
    every_step = True       # a pair crosses min_dist within a step or two

    def value(self, results, atoms):
        return float(results.get("min_distance", np.nan))

    def selects(self, value):
        return self.select is not None and bool(np.isfinite(value)) and value < self.select

    def breaks(self, value):
        return self.break_ is not None and bool(np.isfinite(value)) and value < self.break_

    def break_message(self, step, value):
        return (f"step {step}: atoms {value:.3f} Å apart, closer than mtp.min_dist = "
                f"{self.break_:g} Å, where the potential is not trained")

    def rank(self, pool):
        scored = [(float(a.info.get(self.name, np.nan)), k) for k, a in enumerate(pool)]
        return [k for v, k in sorted(scored) if self.selects(v)]


def default_criteria(gamma_select, gamma_break, std_select=None, std_break=None, gamma_max=None):
    """The criteria of MLIP-2's learning on the fly (with an optional upper trust level), and
    the committee's when its thresholds are given."""
    return [ExtrapolationGrade(gamma_select, gamma_break, gamma_max),
            CommitteeSpread(std_select, std_break)]
