"""The tblite (GFN1-xTB) reference of config/examples/hfo2_tblite.yaml: the labels that stage 2
and the active-learning labelling write (energy, forces, stress) are consistent with the energy.

Skips when the `xtb` extra (tblite) is not installed."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import molecule
from ase.spacegroup import crystal

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
    for atom, axis in ((1, 0), (2, 2)):
        e = []
        for sign in (1, -1):
            moved = unit.copy()
            moved.positions[atom, axis] += sign * STEP
            e.append(_energy(moved, tblite_kwargs))
        assert forces[atom, axis] == pytest.approx(-(e[0] - e[1]) / (2 * STEP), abs=TOL_FORCE)
    e = []
    for sign in (1, -1):                           # xx strain
        strained = unit.copy()
        deformation = np.eye(3)
        deformation[0, 0] += sign * STEP
        strained.set_cell(unit.cell.array @ deformation, scale_atoms=True)
        e.append(_energy(strained, tblite_kwargs))
    assert stress[0] == pytest.approx((e[0] - e[1]) / (2 * STEP) / unit.get_volume(),
                                      abs=TOL_STRESS)


def test_tblite_labels_of_a_molecule_have_no_stress(tblite_kwargs):
    """A non-periodic structure (H2O) gets energy and forces only; forces match -dE/dx."""
    water = molecule("H2O")
    water.rattle(0.02, seed=0)
    labelled = compute_labels(water, make_calculator("tblite", tblite_kwargs))
    assert "stress" not in labelled.calc.results or labelled.calc.results["stress"] is None
    forces = labelled.get_forces()
    e = []
    for sign in (1, -1):
        moved = water.copy()
        moved.positions[0, 2] += sign * STEP
        e.append(_energy(moved, tblite_kwargs))
    assert forces[0, 2] == pytest.approx(-(e[0] - e[1]) / (2 * STEP), abs=TOL_FORCE)
