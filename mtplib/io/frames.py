"""Many configurations as joined arrays (`Frames`), the form the fast readers and writers of
`.cfg` and extxyz and `MTPotential.evaluate_frames` share: no `Atoms` per configuration.

Configuration c holds atoms atom_start[c] .. atom_start[c+1]-1 of the joined per-atom arrays.
`Frames.from_atoms` / `Frames.to_atoms` convert from and to ASE (the general path, for every
other format and for what the fast readers decline).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Frames"]


@dataclass
class Frames:
    """Configurations as joined arrays.

    numbers: atomic number of every atom (0 when a `.cfg` was read without species);
    types: MLIP type of every atom, or None (then the potential maps `numbers`);
    cells (n, 3, 3) rows are the lattice vectors; pbc (n, 3).
    Labels (any may be None): energy (n,), forces (N, 3), stress (n, 6) in ASE's sign and
    Voigt order (xx yy zz yz xz xy, eV/Å³; NaN rows for configurations without one),
    energies (N,) site energies. info: one dict per configuration (`.cfg` Feature lines).
    """

    atom_start: np.ndarray
    numbers: np.ndarray
    positions: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    types: np.ndarray | None = None
    energy: np.ndarray | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    energies: np.ndarray | None = None
    info: list = field(default_factory=list)

    def __len__(self):
        return len(self.atom_start) - 1

    @property
    def sizes(self):
        return np.diff(self.atom_start)

    def structures(self):
        """(positions, cell, pbc) of every configuration, views into the joined arrays."""
        s = self.atom_start
        return [(self.positions[s[c]:s[c + 1]], self.cells[c], self.pbc[c]) for c in range(len(self))]

    def with_results(self, energy, forces, stress, energies):
        """A copy whose labels are these results (the old labels dropped)."""
        return Frames(self.atom_start, self.numbers, self.positions, self.cells, self.pbc,
                      self.types, energy, forces, stress, energies, self.info)

    @classmethod
    def from_atoms(cls, images):
        """Frames of a list of Atoms; labels from each calculator's results (all or none),
        `info` the scalar entries of atoms.info, types from arrays['mtp_type'] when every
        configuration has one."""
        images = list(images)
        n = len(images)
        sizes = np.array([len(a) for a in images], dtype=np.int64)
        atom_start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(sizes, out=atom_start[1:])

        def joined(arrays, shape, dtype):
            return (np.concatenate(arrays).astype(dtype, copy=False) if arrays
                    else np.zeros(shape, dtype=dtype))

        numbers = joined([a.numbers for a in images], (0,), np.int64)
        positions = joined([a.positions for a in images], (0, 3), np.float64)
        cells = np.array([a.cell.array for a in images], dtype=np.float64).reshape(n, 3, 3)
        pbc = np.array([a.pbc for a in images], dtype=bool).reshape(n, 3)
        types = None
        if n and all("mtp_type" in a.arrays for a in images):
            types = joined([a.arrays["mtp_type"] for a in images], (0,), np.int64)
        results = [a.calc.results if a.calc is not None else {} for a in images]

        def label(key, per_atom, width):
            if not n or not all(r.get(key) is not None for r in results):
                return None
            if per_atom:
                return joined([np.asarray(r[key], dtype=np.float64).reshape(-1, *width)
                               for r in results], (0, *width), np.float64)
            return np.array([r[key] for r in results], dtype=np.float64).reshape(n, *width)

        stress = None
        if n and any(r.get("stress") is not None for r in results):
            stress = np.full((n, 6), np.nan)
            for c, r in enumerate(results):
                if r.get("stress") is not None:
                    s = np.asarray(r["stress"], dtype=np.float64)
                    stress[c] = s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]] if s.shape == (3, 3) else s
        return cls(atom_start, numbers, positions, cells, pbc, types, label("energy", False, ()),
                   label("forces", True, (3,)), stress, label("energies", True, ()),
                   [dict(a.info) for a in images])

    def to_atoms(self, species=None):
        """A list of Atoms with the labels as SinglePointCalculators; `species[t]` names MLIP
        type t where the atomic numbers are unknown (0), else the atoms stay 'X' and keep
        arrays['mtp_type']."""
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator
        from ase.data import atomic_numbers

        numbers = self.numbers
        if species is not None and self.types is not None and (numbers == 0).any():
            table = np.array([atomic_numbers[s] for s in species], dtype=np.int64)
            numbers = np.where(numbers == 0, table[self.types], numbers)
        images = []
        s = self.atom_start
        for c in range(len(self)):
            a0, a1 = s[c], s[c + 1]
            atoms = Atoms(numbers=numbers[a0:a1], positions=self.positions[a0:a1],
                          cell=self.cells[c], pbc=self.pbc[c])
            if self.types is not None:
                atoms.arrays["mtp_type"] = self.types[a0:a1].copy()
            if self.info:
                atoms.info.update(self.info[c])
            results = {}
            if self.energy is not None:
                results["energy"] = float(self.energy[c])
            if self.forces is not None:
                results["forces"] = self.forces[a0:a1]
            if self.stress is not None and not np.isnan(self.stress[c]).any():
                results["stress"] = self.stress[c]
            if self.energies is not None:
                results["energies"] = self.energies[a0:a1]
            if results:
                atoms.calc = SinglePointCalculator(atoms, **results)
            images.append(atoms)
        return images
