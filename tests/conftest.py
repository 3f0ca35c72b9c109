import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def shared_path(*parts):
    """A file under ../shared, or skip the test when shared data is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
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


def triclinic_cell(species, n_atoms=5, seed=0):
    """A small triclinic cell whose lengths are below twice the cutoff."""
    from ase import Atoms
    rng = np.random.default_rng(seed)
    cell = np.array([[3.1, 0.0, 0.0], [0.9, 3.3, 0.0], [0.5, 0.7, 3.6]])
    while True:
        frac = rng.random((n_atoms, 3))
        atoms = Atoms([species[k % len(species)] for k in range(n_atoms)],
                      scaled_positions=frac, cell=cell, pbc=True)
        d = atoms.get_all_distances(mic=True)
        if d[np.triu_indices(n_atoms, 1)].min() > 1.7:
            return atoms
