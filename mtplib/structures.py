"""Structures to label or to start MD from: crystal phases, displaced and strained supercells,
random amorphous boxes.

Every random number comes from a seeded ``numpy.random.default_rng``, so each function's
output is a function of its arguments only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_masses, atomic_numbers
from ase.io import read
from ase.spacegroup import crystal

AMU_PER_CM3_TO_G_PER_A3 = 1.66053906660  # 1 amu/Å³ = 1.6605 g/cm³
# The crystal structures ase.build.bulk knows (its `structures` table).
BULK_STRUCTURES = ("sc", "fcc", "bcc", "tetragonal", "bct", "hcp", "rhombohedral",
                   "orthorhombic", "mcl", "diamond", "zincblende", "rocksalt", "cesiumchloride",
                   "fluorite", "wurtzite")
# Atoms closer than this (Å) in a unit cell are overlapping sites (a CIF's duplicate positions).
OVERLAP_DISTANCE = 0.5


def build_phase(name: str, phase: dict, base_dir: str | Path = ".") -> Atoms:
    """The unit cell of phase ``name`` from its description.

    ``{file: path}`` is read with ``ase.io.read`` (path relative to ``base_dir``),
    ``{bulk: {...}}`` goes to ``ase.build.bulk`` and ``{crystal: {...}}`` to
    ``ase.spacegroup.crystal``; the dicts are passed on as keyword arguments.
    """
    if "file" in phase:
        path = Path(base_dir) / phase["file"]
        if not path.exists():
            raise FileNotFoundError(f"config key 'phases.{name}.file': no such file {path}")
        atoms = read(path)
    elif "bulk" in phase:
        atoms = bulk(**phase["bulk"])
    elif "crystal" in phase:
        kwargs = dict(phase["crystal"])
        kwargs["basis"] = [tuple(b) for b in kwargs["basis"]]
        atoms = crystal(**kwargs)
    else:
        raise ValueError(f"config key 'phases.{name}': give one of file, bulk, crystal")
    atoms.pbc = True
    return atoms


def random_strain(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Symmetric strain tensor with entries uniform in [-amplitude, amplitude]."""
    eps = rng.uniform(-amplitude, amplitude, size=(3, 3))
    return 0.5 * (eps + eps.T)


def check_distances(frames: list[Atoms], min_distance_fraction: float, unit: Atoms | None = None,
                    where: str = "structures") -> None:
    """A ValueError naming ``where`` when two atoms of a structure are closer than
    ``min_distance_fraction`` x the shortest distance of ``unit`` (overlapping atoms, an
    absurd rattle), or closer than OVERLAP_DISTANCE in any case."""
    from .analysis.errors import min_distance
    floor, what = OVERLAP_DISTANCE, f"{OVERLAP_DISTANCE} Å (overlapping sites)"
    if unit is not None and min_distance_fraction > 0:
        d_unit, _ = min_distance(unit)
        if np.isfinite(d_unit) and min_distance_fraction * d_unit > floor:
            floor = min_distance_fraction * d_unit
            what = (f"min_distance_fraction = {min_distance_fraction:g} x the unit cell's "
                    f"shortest distance {d_unit:.3f} Å; lower rattle or cell_strain")
    for k, atoms in enumerate(frames):
        d, _ = min_distance(atoms)
        if d < floor:
            label = (f"structure {atoms.info['index']} (supercell {atoms.info.get('supercell')})"
                     if "index" in atoms.info else f"structure {k}")
            raise ValueError(f"config key '{where}': {label} has atoms {d:.3f} Å apart, "
                             f"closer than {what}")


def displace(unit: Atoms, phase: str, supercells: list, structures_per_supercell: int,
             rattle: float, cell_strain: float, seed: int,
             min_distance_fraction: float = 0.0) -> list[Atoms]:
    """Supercells of ``unit`` with a random symmetric cell strain and ionic rattle.

    Each structure records ``info['phase']``, ``info['supercell']`` ("n1xn2xn3") and
    ``info['index']`` (0-based, running over all supercells of the phase). With
    ``min_distance_fraction`` > 0 a structure whose atoms come closer than that fraction of
    the unit cell's shortest distance is an error (:func:`check_distances`).
    """
    rng = np.random.default_rng(seed)
    frames = []
    for repeat in supercells:
        base = unit.repeat(tuple(int(n) for n in repeat))
        for _ in range(structures_per_supercell):
            atoms = base.copy()
            deformation = np.eye(3) + random_strain(rng, cell_strain)
            atoms.set_cell(atoms.cell.array @ deformation, scale_atoms=True)
            atoms.positions += rng.normal(0.0, rattle, size=atoms.positions.shape)
            atoms.wrap()
            atoms.info = {"phase": phase, "supercell": "x".join(str(int(n)) for n in repeat),
                          "index": len(frames)}
            frames.append(atoms)
    if min_distance_fraction > 0:
        check_distances(frames, min_distance_fraction, unit, where=f"phases.{phase}.displacements")
    return frames


def composition_counts(composition: dict, n_atoms: int) -> dict[str, int]:
    """Integer counts summing to n_atoms, proportional to composition (largest remainder)."""
    total = float(sum(composition.values()))
    exact = {el: n_atoms * x / total for el, x in composition.items()}
    counts = {el: int(np.floor(v)) for el, v in exact.items()}
    rest = n_atoms - sum(counts.values())
    for el in sorted(exact, key=lambda e: counts[e] - exact[e])[:rest]:
        counts[el] += 1
    return counts


def amorphous_box_length(composition: dict, density: float, n_atoms: int) -> float:
    """Edge (Å) of the cubic box of :func:`amorphous_box` (n_atoms at `density`, g/cm³)."""
    counts = composition_counts(composition, n_atoms)
    mass = sum(atomic_masses[atomic_numbers[el]] for el, n in counts.items() for _ in range(n))
    return float((mass * AMU_PER_CM3_TO_G_PER_A3 / density) ** (1.0 / 3.0))


def height_repeats(atoms, min_height) -> list[int]:
    """Repetitions along each axis of the smallest diagonal supercell of `atoms` whose
    perpendicular heights are all at least `min_height` Å (1 along a non-periodic axis)."""
    heights = cell_heights(atoms.cell.array, atoms.pbc)
    return [1 if not np.isfinite(h) or h >= min_height else int(np.ceil(min_height / h))
            for h in heights]


def repeat_to_height(atoms, min_height):
    """`atoms` repeated along each periodic axis until every perpendicular height is at least
    `min_height` Å (the smallest such diagonal supercell); unchanged when it already is."""
    reps = height_repeats(atoms, min_height)
    return atoms.repeat(reps) if max(reps) > 1 else atoms.copy()


def cell_heights(cell, pbc=True) -> np.ndarray:
    """Perpendicular height (Å) of a cell along each of its vectors: volume / area of the
    opposite face, the thickness of the slab between periodic images; inf along a
    non-periodic axis."""
    cell = np.asarray(cell, dtype=float)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), 3)
    volume = abs(np.linalg.det(cell))
    heights = np.full(3, np.inf)
    for k in np.flatnonzero(pbc):
        area = np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
        heights[k] = volume / area if area > 0 else 0.0
    return heights


def amorphous_box(composition: dict, density: float, n_atoms: int = 32, seed: int = 0,
                  min_distance: float = 1.8, max_attempts: int = 100000,
                  where: str = "amorphous", pair_min_distance: dict | None = None) -> Atoms:
    """A cubic periodic box of n_atoms at `density` (g/cm³), atoms placed at random
    (seeded) no closer than `min_distance` (Å, minimum image), or than
    `pair_min_distance['A-B']` for a pair of species A, B (either order) where given."""
    counts = composition_counts(composition, n_atoms)
    symbols = [el for el, n in counts.items() for _ in range(n)]
    length = amorphous_box_length(composition, density, n_atoms)
    rng = np.random.default_rng(seed)
    rng.shuffle(symbols)
    species = sorted(set(symbols))
    table = np.full((len(species), len(species)), float(min_distance))
    for pair, value in (pair_min_distance or {}).items():
        a, _, b = pair.partition("-")
        if a not in species or b not in species:
            raise ValueError(f"config key '{where}.pair_min_distance': {pair!r} is not a pair of "
                             f"the box's species {species} ('A-B')")
        table[species.index(a), species.index(b)] = table[species.index(b), species.index(a)] = value
    kinds = np.array([species.index(s) for s in symbols])
    placed = np.zeros((0, 3))
    attempts = 0
    while len(placed) < len(symbols):
        attempts += 1
        if attempts > max_attempts:
            raise ValueError(
                f"config key '{where}': could not place {len(symbols)} atoms {min_distance} Å "
                f"apart in a {length:.3f} Å box (density {density} g/cm³); lower the density, "
                "min_distance (pair_min_distance) or n_atoms")
        trial = rng.random(3) * length
        d = placed - trial
        d -= length * np.round(d / length)
        need = table[kinds[len(placed)], kinds[:len(placed)]]
        if len(placed) == 0 or np.all(np.sqrt((d ** 2).sum(axis=1)) >= need):
            placed = np.vstack([placed, trial])
    return Atoms(symbols, positions=placed, cell=[length] * 3, pbc=True)


def check_species(atoms: Atoms, elements: list, where: str) -> None:
    """A clear error when `atoms` holds a species outside `elements`."""
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if unknown:
        raise ValueError(f"{where}: species {unknown} are not in config key 'elements' {elements}")
