"""Stage 1: build each phase and sample displaced, strained supercells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms


def build_phase(name: str, phase: dict, base_dir: str | Path = ".") -> Atoms:
    """Build the unit cell of phase ``name`` from its config entry.

    ``{file: path}`` is read with ``ase.io.read`` (path relative to ``base_dir``),
    ``{bulk: {...}}`` goes to ``ase.build.bulk`` and ``{crystal: {...}}`` to
    ``ase.spacegroup.crystal``; the dicts are passed on as keyword arguments.
    """
    if "file" in phase:
        from ase.io import read

        path = Path(base_dir) / phase["file"]
        if not path.exists():
            raise FileNotFoundError(f"config key 'phases.{name}.file': no such file {path}")
        atoms = read(path)
    elif "bulk" in phase:
        from ase.build import bulk

        atoms = bulk(**phase["bulk"])
    elif "crystal" in phase:
        from ase.spacegroup import crystal

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


def displace(
    unit: Atoms,
    phase: str,
    supercells: list,
    structures_per_supercell: int,
    rattle: float,
    cell_strain: float,
    seed: int,
) -> list[Atoms]:
    """Supercells of ``unit`` with a random symmetric cell strain and ionic rattle.

    Every random number comes from ``numpy.random.default_rng(seed)``, so the
    output is a function of the arguments only. Each structure records
    ``info['phase']``, ``info['supercell']`` ("n1x n2 x n3") and ``info['index']``
    (0-based, running over all supercells of the phase).
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
            atoms.info = {
                "phase": phase,
                "supercell": "x".join(str(int(n)) for n in repeat),
                "index": len(frames),
            }
            frames.append(atoms)
    return frames
