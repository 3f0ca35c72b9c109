import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))   # the workflow glue: scripts.mtpflow


def shared_path(*parts):
    """A file under ../shared, or skip the test when shared data is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"the project's benchmark data ({path}: the mlearn and Ag-Pd DFT sets, kept "
                    "beside the repository in ../shared, optional) is absent: this test of "
                    "published potentials against published errors is skipped; every other "
                    "test runs without it")
    return path


def random_potential(level, species, seed=0, min_dist=1.6, max_dist=4.2, radial_basis_size=6):
    """A potential with random but well-scaled coefficients, for physics tests."""
    from mtplib import MTPotential
    rng = np.random.default_rng(seed)
    pot = MTPotential.from_level(level, species, min_dist, max_dist, radial_basis_size)
    s = pot.species_count
    pot.radial_coeffs = rng.normal(size=(s, s, pot.radial_funcs_count, radial_basis_size)) * 0.5
    pot.species_coeffs = rng.normal(size=s)
    pot.moment_coeffs = rng.normal(size=pot.alpha_scalar_moments) * 0.1
    return pot


def triclinic_cell(species, n_atoms=5, seed=0, min_separation=1.8):
    """A small triclinic cell (lengths below twice the cutoff) filled by random sequential addition."""
    from ase import Atoms
    rng = np.random.default_rng(seed)
    cell = np.array([[3.1, 0.0, 0.0], [0.9, 3.3, 0.0], [0.5, 0.7, 3.6]]) * max(1.0, (n_atoms / 4) ** (1 / 3))
    images = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]) @ cell
    frac = []
    for _ in range(100000):
        trial = rng.random(3)
        x = trial @ cell
        ok = all(np.linalg.norm(x - (f @ cell) + images, axis=1).min() > min_separation for f in frac)
        if ok and np.linalg.norm(images[np.any(images != 0, axis=1)], axis=1).min() > min_separation:
            frac.append(trial)
            if len(frac) == n_atoms:
                return Atoms([species[k % len(species)] for k in range(n_atoms)],
                             scaled_positions=np.array(frac), cell=cell, pbc=True)
    raise RuntimeError("could not place the atoms")


@pytest.fixture(scope="session")
def cu_fit():
    """(level-8 Cu potential fitted linearly to 30 EMT cells, its configuration active set)."""
    from mtplib.active import ActiveSet
    from mtplib.active.testing import emt_cells, linear_fit, tiny_potential
    train = emt_cells(30, seed=1)
    pot = linear_fit(tiny_potential(8), train)
    return pot, ActiveSet.from_training(pot, train)
