"""Small EMT data sets and a linear fit, for the active-learning tests and benchmarks.

`linear_fit` keeps the radial coefficients fixed (random, seeded) and fits the species and
moment coefficients, in which energies and forces are linear, by ridge least squares. It is
a legitimate small fit, independent of `mtplib.training`.
"""
from __future__ import annotations

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from ..potential import MTPotential


def label_emt(atoms):
    """A copy of `atoms` with EMT energy, forces and stress attached."""
    atoms = atoms.copy()
    atoms.calc = EMT()
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    stress = atoms.get_stress() if atoms.pbc.all() else None
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
    return atoms


def emt_cells(count, repeat=(2, 2, 2), rattle=0.1, seed=0, symbols=("Cu",), a=3.61, strain=0.03,
              cubic=True):
    """`count` rattled, randomly strained fcc cells labelled with EMT (Cu, or Cu/Au mixed)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        atoms = bulk(symbols[0], "fcc", a=a, cubic=cubic).repeat(repeat)
        if len(symbols) > 1:
            atoms.symbols = rng.choice(list(symbols), size=len(atoms))
        cell = atoms.cell.array @ (np.eye(3) + strain * rng.uniform(-1, 1, (3, 3)))
        atoms.set_cell(cell, scale_atoms=True)
        atoms.positions += rattle * rng.normal(size=atoms.positions.shape)
        out.append(label_emt(atoms))
    return out


def random_radial(potential, seed=0, amplitude=0.1):
    """Seeded random radial coefficients; zero species and moment coefficients."""
    rng = np.random.default_rng(seed)
    s, n_mu, size = potential.species_count, potential.radial_funcs_count, potential.radial_basis_size
    potential.radial_coeffs = amplitude * rng.uniform(-1, 1, (s, s, n_mu, size))
    potential.radial_coeffs[:, :, :, 0] += amplitude      # a smooth positive leading term
    potential.species_coeffs = np.zeros(s)
    potential.moment_coeffs = np.zeros(potential.alpha_scalar_moments)
    return potential


def linear_fit(potential, images, seed=0, force_weight=0.01, ridge=1e-6, keep_radial=False):
    """Fit species and moment coefficients to energies and forces (fixed radial coefficients).

    Energies enter per atom (weight 1), force components with `force_weight`; `ridge` is a
    Tikhonov term relative to the largest squared column norm."""
    if not keep_radial or potential.radial_coeffs is None:
        random_radial(potential, seed)
    n_s = potential.species_count
    n_m = potential.alpha_scalar_moments
    linear = n_s + n_m
    rows, rhs = [], []
    for atoms in images:
        n = len(atoms)
        types = potential.types_of(atoms)
        cols_e = np.zeros(linear)
        cols_f = np.zeros((3 * n, linear))
        cols_e[:n_s] = np.bincount(types, minlength=n_s) / n
        for alpha in range(n_m):
            potential.species_coeffs = np.zeros(n_s)
            potential.moment_coeffs = np.eye(n_m)[alpha]
            res = potential.evaluate(atoms)
            cols_e[n_s + alpha] = res["energy"] / n
            cols_f[:, n_s + alpha] = res["forces"].ravel()
        rows.append(cols_e[None])
        rhs.append([atoms.get_potential_energy() / n])
        if force_weight > 0:
            rows.append(np.sqrt(force_weight) * cols_f)
            rhs.append(np.sqrt(force_weight) * atoms.get_forces().ravel())
    M, y = np.vstack(rows), np.concatenate([np.ravel(r) for r in rhs])
    scale = np.sqrt((M ** 2).sum(axis=0)) + 1e-300
    Ms = M / scale
    lam = ridge * (Ms ** 2).sum(axis=0).max()
    coef = np.linalg.solve(Ms.T @ Ms + lam * np.eye(linear), Ms.T @ y) / scale
    potential.species_coeffs = coef[:n_s].copy()
    potential.moment_coeffs = coef[n_s:].copy()
    return potential


def tiny_potential(level=8, species=("Cu",), min_dist=1.5, max_dist=4.5, radial_basis_size=6):
    return MTPotential.from_level(level, list(species), min_dist, max_dist, radial_basis_size)
