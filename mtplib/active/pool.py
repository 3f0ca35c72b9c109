"""Candidate pool for a convex-hull search (Novikov et al. 2021, sec. 6): derivative
superstructures of parent lattices, enumerated by icet (Hart-Forcade), plus structure files.

Every structure of `enumerate_pool` follows from its `PoolSettings`: icet's enumeration is
deterministic, the volume of each cell is set by Vegard's law from the elements' atomic
volumes, and an optional cap on the pool size draws a subset with `seed`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import ase.io
import numpy as np
from ase.build import bulk
from ase.data import atomic_numbers, reference_states

LATTICES = ("fcc", "bcc", "hcp")
ATOMS_PER_PRIMITIVE = {"fcc": 1, "bcc": 1, "hcp": 2}
IDEAL_C_OVER_A = np.sqrt(8.0 / 3.0)


class PoolError(ValueError):
    """Bad pool settings (one line naming the setting)."""


@dataclass
class PoolSettings:
    """What the pool is made of.

    elements: the alloy's elements; lattices: parent lattices among fcc, bcc, hcp;
    max_atoms: largest cell (atoms) of a derivative superstructure; atomic_volumes:
    {element: Å^3/atom} (default: ASE's reference state of each element); structure_files:
    further structures (any ASE format, every frame); max_structures: draw at most this
    many (seeded by `seed`), None for all."""

    elements: tuple = ("Ag", "Pd")
    lattices: tuple = LATTICES
    max_atoms: int = 6
    atomic_volumes: dict | None = None
    structure_files: tuple = ()
    max_structures: int | None = None
    seed: int = 0

    def to_dict(self):
        return asdict(self)


def reference_atomic_volume(element):
    """Å^3/atom of `element`'s reference state in ASE (fcc a^3/4, bcc a^3/2, hcp)."""
    state = reference_states[atomic_numbers[element]] or {}
    sym, a = state.get("symmetry"), state.get("a")
    if sym == "fcc":
        return a ** 3 / 4
    if sym == "bcc":
        return a ** 3 / 2
    if sym == "hcp":
        return np.sqrt(3) / 4 * a ** 2 * a * state.get("c/a", IDEAL_C_OVER_A)
    raise PoolError(f"atomic_volumes: no reference volume for {element} in ASE "
                    f"(state {sym!r}); give it in atomic_volumes")


def parent_lattice(lattice, atomic_volume, element):
    """The primitive cell of `lattice` with `atomic_volume` Å^3 per atom."""
    if lattice == "fcc":
        return bulk(element, "fcc", a=(4 * atomic_volume) ** (1 / 3))
    if lattice == "bcc":
        return bulk(element, "bcc", a=(2 * atomic_volume) ** (1 / 3))
    if lattice == "hcp":
        a = (4 * atomic_volume / (np.sqrt(3) * IDEAL_C_OVER_A)) ** (1 / 3)
        return bulk(element, "hcp", a=a, c=IDEAL_C_OVER_A * a)
    raise PoolError(f"lattices: unknown lattice {lattice!r}; use some of {LATTICES}")


def vegard_scale(atoms, atomic_volumes):
    """Scale the cell (and positions) to the composition-weighted atomic volume."""
    target = sum(atomic_volumes[s] for s in atoms.get_chemical_symbols())
    atoms.set_cell(atoms.cell.array * (target / atoms.get_volume()) ** (1 / 3), scale_atoms=True)
    return atoms


def enumerate_pool(settings: PoolSettings):
    """The candidate structures (list of Atoms with info `pool_id`, `lattice`, `formula`).

    Order: lattices as given, then icet's order (by cell size, then its enumeration order),
    then the structure files; ids are 'fcc-00012' etc."""
    try:
        from icet.tools import enumerate_structures
    except ImportError as err:
        raise PoolError(f"the candidate pool needs icet ({err}): pip install 'mtplib[hull]'") \
            from None

    elements = list(settings.elements)
    if len(elements) < 2 or len(set(elements)) != len(elements):
        raise PoolError(f"elements: need two or more distinct elements, got {elements}")
    for el in elements:
        if el not in atomic_numbers:
            raise PoolError(f"elements: unknown element {el!r}")
    if int(settings.max_atoms) < 1:
        raise PoolError(f"max_atoms: must be at least 1, got {settings.max_atoms}")
    volumes = {el: float((settings.atomic_volumes or {}).get(el) or reference_atomic_volume(el))
               for el in elements}
    mean_volume = float(np.mean(list(volumes.values())))
    pool = []
    for lattice in settings.lattices:
        prim = parent_lattice(lattice, mean_volume, elements[0])
        sizes = range(1, int(settings.max_atoms) // ATOMS_PER_PRIMITIVE[lattice] + 1)
        if not len(sizes):
            continue
        for k, atoms in enumerate(enumerate_structures(prim, sizes, elements)):
            atoms = vegard_scale(atoms, volumes)
            atoms.info.update(pool_id=f"{lattice}-{k:05d}", lattice=lattice,
                              formula=atoms.get_chemical_formula())
            pool.append(atoms)
    for path in settings.structure_files:
        try:
            frames = ase.io.read(path, ":")
        except Exception as exc:   # any reader error: one line naming the file
            raise PoolError(f"structure_files: cannot read {path} ({exc})") from exc
        for k, atoms in enumerate(frames):
            unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
            if unknown:
                raise PoolError(f"structure_files: {path}[{k}] has elements {unknown} "
                                f"not in {elements}")
            atoms = atoms.copy()
            atoms.calc = None
            atoms.info.update(pool_id=f"{Path(path).stem}-{k:05d}", lattice="file",
                              formula=atoms.get_chemical_formula())
            pool.append(atoms)
    if settings.max_structures is not None and len(pool) > settings.max_structures:
        rng = np.random.default_rng(settings.seed)
        keep = np.sort(rng.choice(len(pool), size=int(settings.max_structures), replace=False))
        pool = [pool[k] for k in keep]
    return pool
