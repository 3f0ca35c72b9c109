"""The tblite (GFN1-xTB) reference of config/examples/hfo2_tblite.yaml: the labels that stage 2
and the active-learning labelling write (energy, forces, stress) are consistent with the energy.

Skips when the `xtb` extra (tblite) is not installed."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import molecule
from ase.spacegroup import crystal
from helpers.fd import numerical_forces, numerical_stress

from mtplib.labeling.label import compute_labels
from mtplib.labeling.registry import make_calculator

pytest.importorskip("tblite.ase", reason="tblite not installed (pip install 'mtplib[xtb]')")

ROOT = Path(__file__).resolve().parents[1]
STEP = 1e-3          # Å for positions, dimensionless for the strain
TOL_FORCE = 1e-4     # eV/Å; the SCF is converged well below this
TOL_STRESS = 1e-5    # eV/Å³


@pytest.fixture(scope="module")
def tblite_kwargs():
    """The reference kwargs of the shipped HfO2 example, so the test checks what it runs."""
    config = yaml.safe_load((ROOT / "config" / "examples" / "hfo2_tblite.yaml").read_text())
    assert config["reference"]["name"] == "tblite"
    return config["reference"]["kwargs"]


def _energy(atoms, kwargs):
    work = atoms.copy()
    work.calc = make_calculator("tblite", kwargs)
    return work.get_potential_energy()


def test_tblite_labels_of_a_periodic_hfo2_cell_match_finite_differences(tblite_kwargs):
    """Primitive fluorite HfO2 (3 atoms), rattled: forces = -dE/dx and stress = dE/de / V."""
    unit = crystal(["Hf", "O"], basis=[[0, 0, 0], [0.25, 0.25, 0.25]], spacegroup=225,
                   cellpar=[5.08, 5.08, 5.08, 90, 90, 90], primitive_cell=True)
    unit.rattle(0.05, seed=1)
    labelled = compute_labels(unit, make_calculator("tblite", tblite_kwargs))
    energy = labelled.get_potential_energy()
    forces = labelled.get_forces()
    stress = labelled.get_stress()
    assert np.isfinite(energy) and energy < 0
    assert forces.shape == (3, 3) and stress.shape == (6,)
    assert np.abs(forces).max() > 0.1            # rattled: not at a force-free point
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-6)
    numerical = numerical_forces(unit, lambda atoms: _energy(atoms, tblite_kwargs), STEP,
                                 indices=[(1, 0), (2, 2)])
    for atom, axis in ((1, 0), (2, 2)):
        assert forces[atom, axis] == pytest.approx(numerical[atom, axis], abs=TOL_FORCE)
    xx = numerical_stress(unit, lambda atoms: _energy(atoms, tblite_kwargs), STEP, components=[0])
    assert stress[0] == pytest.approx(xx[0], abs=TOL_STRESS)


def test_tblite_labels_of_a_molecule_have_no_stress(tblite_kwargs):
    """A non-periodic structure (H2O) gets energy and forces only; forces match -dE/dx."""
    water = molecule("H2O")
    water.rattle(0.02, seed=0)
    labelled = compute_labels(water, make_calculator("tblite", tblite_kwargs))
    assert "stress" not in labelled.calc.results or labelled.calc.results["stress"] is None
    forces = labelled.get_forces()
    numerical = numerical_forces(water, lambda atoms: _energy(atoms, tblite_kwargs), STEP,
                                 indices=[(0, 2)])
    assert forces[0, 2] == pytest.approx(numerical[0, 2], abs=TOL_FORCE)
