"""Molecular dynamics on plain arrays: the MTP's forces (and grade) of a moving structure, and
ASE's integrators stepped without the `Atoms`/`Calculator` round trip.

An ASE step asks the calculator for forces through `Atoms`, whose `check_state` compares
positions, cell and numbers with `allclose` on every property request, and copies the
atoms on every calculation. Here the species, cell and pbc of a run are fixed once; a step
is the integrator's arithmetic on the position and momentum arrays, one neighbour search
and one kernel pass. `VerletArrays` and `LangevinArrays` take their constants (time step,
masses, Langevin coefficients, random generator) from the ASE integrator object and do the
arithmetic of its `step` in the same order, so a run gives ASE's trajectory bit for bit
(tests/test_md.py checks this against ASE's own run).
"""
from __future__ import annotations

import numpy as np

from .active.grade import gamma_of, selection_rows
from .neighbors import neighbor_csr_shortest
from .potential import MTPInputError


class ArrayForces:
    """Energy, forces and site energies (and the extrapolation grade on request) of a structure
    whose positions move while its species, cell and pbc stay those of `atoms`.

    The numbers are those of `MTPotential.evaluate` and `ActiveSet.evaluate` (the same
    neighbour search, the same kernel call, the same reduction of the rows), without
    the stress."""

    def __init__(self, potential, atoms, active_set=None, where="structure"):
        if active_set is not None:
            potential = active_set.potential
        potential.kernel_arrays()                  # an untrained potential fails here
        self.potential = potential
        self.active_set = active_set
        self.where = where
        self.types = potential.types_of(atoms, where)
        self.cell = np.array(atoms.cell.array, dtype=np.float64)
        self.pbc = np.array(atoms.pbc, dtype=bool)

    def __call__(self, positions, grade=False):
        """dict(energy, forces, energies, min_distance[, gamma[, gamma_atoms]]): gamma as
        `ActiveSet.evaluate` when `grade` and an active set is given."""
        pot, where = self.potential, self.where
        if not np.isfinite(positions).all():
            bad = int(np.flatnonzero(~np.isfinite(positions).all(axis=1))[0])
            raise MTPInputError(f"{where}: non-finite coordinates (atom {bad})")
        try:
            offsets, nbr, vec, shortest = neighbor_csr_shortest(positions, self.cell, self.pbc,
                                                                pot.max_dist)
        except ValueError as exc:
            raise MTPInputError(f"{where}: {exc}") from exc
        pot._warn_closer_than_min_dist(shortest, where, stacklevel=3)
        grading = grade and self.active_set is not None
        weighted = grading and not self.active_set.weights.is_mode_default
        per_atom = grading and self.active_set.mode == "neighborhood"
        site, forces, _, rows = pot.run_kernel(self.types, offsets, nbr, vec, True, grading,
                                               per_atom)
        res = dict(energy=float(site.sum()), forces=forces, energies=site,
                   min_distance=float(shortest))
        if weighted:                             # selection weights: `ActiveSet.evaluate`'s rows
            rows, row_atoms = selection_rows(pot, self.active_set.weights, self.types, offsets,
                                             nbr, vec, rows)
            res["gamma"], gamma_atoms = gamma_of(self.active_set.grade_rows(rows), row_atoms,
                                                 len(site))
            if gamma_atoms is not None:
                res["gamma_atoms"] = gamma_atoms
        elif grading:
            if not per_atom:                     # configuration mode: b = sum_i dE_i/dtheta / N
                rows = rows.sum(axis=0, keepdims=True) / max(len(site), 1)
            per_row = self.active_set.grade_rows(rows)
            res["gamma"] = float(per_row.max()) if len(per_row) else 0.0
            if per_atom:
                res["gamma_atoms"] = per_row
        return res


class VerletArrays:
    """`ase.md.verlet.VelocityVerlet.step` on arrays (no constraints)."""

    def __init__(self, dyn):
        self.dt = dyn.dt
        self.masses = dyn.atoms.get_masses()[:, None]

    def step(self, positions, momenta, forces, force_fn):
        """(positions, momenta, forces) one step on; force_fn(positions) -> forces."""
        p = momenta.copy()
        p += 0.5 * self.dt * forces
        positions = positions + self.dt * p / self.masses
        forces = force_fn(positions)
        return positions, p + 0.5 * self.dt * forces, forces


class LangevinArrays:
    """`ase.md.langevin.Langevin.step` on arrays (Vanden-Eijnden and Ciccotti 2006, eq. 23;
    fixcm=False, no constraints), with the integrator's coefficients as they are at each step
    (`set_temperature` may change them) and its own random generator."""

    def __init__(self, dyn):
        if dyn.fix_com:
            raise ValueError("LangevinArrays: fixcm=True is not supported")
        self.dyn = dyn

    def step(self, positions, momenta, forces, force_fn):
        dyn = self.dyn
        dt, masses, c1, c2, c3, c4, c5 = dyn.dt, dyn.masses, dyn.c1, dyn.c2, dyn.c3, dyn.c4, dyn.c5
        n = len(positions)
        v = momenta / masses
        xi = dyn.rng.standard_normal(size=(n, 3))
        eta = dyn.rng.standard_normal(size=(n, 3))
        rnd_pos = c5 * eta
        rnd_vel = c3 * xi - c4 * eta
        v += c1 * forces / masses - c2 * v + rnd_vel        # half step in v
        x = positions
        positions = x + dt * v + rnd_pos                    # full step in x
        v = (positions - x - rnd_pos) / dt
        forces = force_fn(positions)
        v += c1 * forces / masses - c2 * v + rnd_vel        # half step in v
        return positions, v * masses, forces


def array_integrator(dyn):
    """The array stepper that reproduces the ASE integrator `dyn`; ValueError when there is
    none (another integrator, constraints, fixcm)."""
    from ase.md.langevin import Langevin
    from ase.md.verlet import VelocityVerlet

    if dyn.atoms.constraints:
        raise ValueError("array integrators take no constraints")
    if type(dyn) is VelocityVerlet:
        return VerletArrays(dyn)
    if type(dyn) is Langevin:
        return LangevinArrays(dyn)
    raise ValueError(f"no array integrator for {type(dyn).__name__}")


def kinetic_temperature(momenta, masses):
    """Temperature (K) of `Atoms.get_temperature` without constraints: 2 E_kin / (3 N k_B)."""
    from ase import units

    ekin = 0.5 * np.vdot(momenta, momenta / masses.reshape(-1, 1))
    return 2 * ekin / (momenta.size * units.kB)
