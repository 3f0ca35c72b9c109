"""Exploration and validation scenarios: names, start structures, MD settings.

A configured active-learning scenario expands into one run per temperature (and per
phase when ``start.phases`` lists several); each run has a unique name that Snakemake
uses as the ``{scenario}`` wildcard, e.g. ``cu3au_md_600K`` or ``md_Cu_300K``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

# config ensemble -> mtplib.active.md.make_integrator name
ENSEMBLES = {"nve": "nve", "nvt": "nvt", "nvt_nh": "nvt-nhc", "npt": "npt"}
AMU_PER_CM3_TO_G_PER_A3 = 1.66053906660  # 1 amu/Å³ = 1.6605 g/cm³


def temperature_label(t: float) -> str:
    return f"{t:g}K".replace(".", "p")


def expand_scenarios(scenarios: list[dict]) -> dict[str, dict]:
    """Scenario name -> run spec (one temperature, one start), in config order.

    The spec is the config entry with ``temperature`` (a number) in place of
    ``temperatures`` and ``start`` reduced to one phase."""
    runs: dict[str, dict] = {}
    for sc in scenarios:
        start = dict(sc["start"])
        starts = [start]
        if "phases" in start:
            starts = [{**{k: v for k, v in start.items() if k != "phases"}, "phase": p}
                      for p in start["phases"]]
        for st in starts:
            for t in sc.get("temperatures", [300]):
                parts = [sc["name"]]
                if "phases" in start:
                    parts.append(st["phase"])
                parts.append(temperature_label(t))
                name = "_".join(parts)
                if name in runs:
                    raise ValueError(f"config key 'active_learning.scenarios': run name {name!r} "
                                     "occurs twice; give the scenarios distinct names")
                spec = {k: v for k, v in sc.items() if k != "temperatures"}
                spec.update(name=name, scenario=sc["name"], temperature=float(t), start=st)
                runs[name] = spec
    return runs


def composition_counts(composition: dict, n_atoms: int) -> dict[str, int]:
    """Integer counts summing to n_atoms, proportional to composition (largest remainder)."""
    total = float(sum(composition.values()))
    exact = {el: n_atoms * x / total for el, x in composition.items()}
    counts = {el: int(np.floor(v)) for el, v in exact.items()}
    rest = n_atoms - sum(counts.values())
    for el in sorted(exact, key=lambda e: counts[e] - exact[e])[:rest]:
        counts[el] += 1
    return counts


def amorphous_box(composition: dict, density: float, n_atoms: int = 32, seed: int = 0,
                  min_distance: float = 1.8, max_attempts: int = 100000,
                  where: str = "amorphous") -> Atoms:
    """A cubic periodic box of n_atoms at `density` (g/cm³), atoms placed at random
    (seeded) no closer than `min_distance` (Å, minimum image)."""
    counts = composition_counts(composition, n_atoms)
    symbols = [el for el, n in counts.items() for _ in range(n)]
    mass = sum(atomic_masses[atomic_numbers[s]] for s in symbols)
    length = (mass * AMU_PER_CM3_TO_G_PER_A3 / density) ** (1.0 / 3.0)
    rng = np.random.default_rng(seed)
    rng.shuffle(symbols)
    placed = np.zeros((0, 3))
    attempts = 0
    while len(placed) < len(symbols):
        attempts += 1
        if attempts > max_attempts:
            raise ValueError(
                f"config key '{where}': could not place {len(symbols)} atoms {min_distance} Å "
                f"apart in a {length:.3f} Å box (density {density} g/cm³); lower the density, "
                "min_distance or n_atoms")
        trial = rng.random(3) * length
        d = placed - trial
        d -= length * np.round(d / length)
        if len(placed) == 0 or np.sqrt((d ** 2).sum(axis=1)).min() >= min_distance:
            placed = np.vstack([placed, trial])
    return Atoms(symbols, positions=placed, cell=[length] * 3, pbc=True)


def build_start(spec: dict, phases: dict, base_dir: str | Path = ".", where: str = "scenario") -> Atoms:
    """The starting structure of a run: a phase supercell, an amorphous box or a file."""
    from .displace import build_phase

    start = spec["start"]
    if "phase" in start:
        atoms = build_phase(start["phase"], phases[start["phase"]], base_dir)
        atoms = atoms.repeat(tuple(int(n) for n in start.get("supercell", [2, 2, 2])))
    elif "amorphous" in start:
        am = start["amorphous"]
        atoms = amorphous_box(am["composition"], am["density"], am.get("n_atoms", 32),
                              am.get("seed", 0), am.get("min_distance", 1.8),
                              where=f"{where}.start.amorphous")
    elif "file" in start:
        from ase.io import read

        path = Path(base_dir) / start["file"]
        if not path.exists():
            raise FileNotFoundError(f"config key '{where}.start.file': no such file {path}")
        atoms = read(path)
    else:
        raise ValueError(f"config key '{where}.start': give one of phase, phases, amorphous, file")
    return atoms


def check_species(atoms: Atoms, elements: list, where: str) -> None:
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if unknown:
        raise ValueError(f"{where}: species {unknown} are not in config key 'elements' {elements}")
