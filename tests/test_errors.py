"""mtplib.analysis.errors: eqs. 8-10 of the MLIP paper on hand-made numbers."""

import json
import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from mtplib.analysis.errors import (EV_PER_A3_TO_GPA, error_metrics, format_error_table,
                                    min_distance, write_errors_json)


def _ref(n, energy=None, forces=None, stress=None, pbc=True):
    atoms = Atoms(f"Cu{n}", positions=np.arange(3 * n).reshape(n, 3) * 2.0,
                  cell=np.eye(3) * 10.0 * n, pbc=pbc)
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
    return atoms


@pytest.fixture
def dataset():
    reference = [
        _ref(2, energy=-10.0, forces=np.zeros((2, 3)), stress=np.zeros(6)),
        _ref(4, energy=-20.0, forces=np.ones((4, 3)), stress=None),  # no reference stress
        _ref(1, energy=None, forces=[[0.0, 0.0, 1.0]], stress=np.full(6, 0.01)),
    ]
    predicted = [
        # energy error 0.004 eV over 2 atoms = 2 meV/atom
        {"energy": -9.996, "forces": [[0.1, 0, 0], [0, -0.2, 0]],
         "stress": [0.001, 0, 0, 0, 0, 0]},
        # energy error -0.024 eV over 4 atoms = -6 meV/atom; all forces exact
        {"energy": -20.024, "forces": np.ones((4, 3)), "stress": np.zeros(6)},
        {"energy": -5.0, "forces": [[0.0, 0.0, 1.3]], "stress": np.full(6, 0.01)},
    ]
    return reference, predicted


def test_energy_per_atom_in_mev(dataset):
    m = error_metrics(*dataset)["energy_per_atom"]
    assert m["unit"] == "meV/atom"
    assert m["n"] == 2 and m["n_configs"] == 2 and m["n_skipped"] == 1
    assert m["mae"] == pytest.approx(4.0, rel=1e-9)
    assert m["rmse"] == pytest.approx(math.sqrt((4 + 36) / 2), rel=1e-9)
    assert m["max"] == pytest.approx(6.0, rel=1e-9)


def test_forces_per_component(dataset):
    m = error_metrics(*dataset)["forces"]
    assert m["unit"] == "eV/Å"
    assert m["n"] == 3 * 7 and m["n_configs"] == 3 and m["n_skipped"] == 0
    assert m["mae"] == pytest.approx((0.1 + 0.2 + 0.3) / 21, rel=1e-12)
    rmse = math.sqrt((0.01 + 0.04 + 0.09) / 21)
    assert m["rmse"] == pytest.approx(rmse, rel=1e-12)
    assert m["max"] == pytest.approx(0.3, rel=1e-12)
    rms_ref = math.sqrt((12 + 1) / 21)
    assert m["relative_rmse"] == pytest.approx(rmse / rms_ref, rel=1e-12)


def test_stress_in_gpa(dataset):
    m = error_metrics(*dataset)["stress"]
    assert m["unit"] == "GPa"
    assert m["n"] == 12 and m["n_configs"] == 2 and m["n_skipped"] == 1
    assert m["max"] == pytest.approx(0.001 * 160.21766208, rel=1e-12)
    assert m["mae"] == pytest.approx(0.001 * EV_PER_A3_TO_GPA / 12, rel=1e-12)
    assert m["rmse"] == pytest.approx(0.001 * EV_PER_A3_TO_GPA / math.sqrt(12), rel=1e-12)


def test_non_periodic_and_missing(tmp_path):
    cluster = _ref(2, energy=1.0, forces=np.zeros((2, 3)), stress=np.zeros(6), pbc=False)
    unlabelled = Atoms("Cu", cell=np.eye(3) * 3, pbc=True)
    m = error_metrics([cluster, unlabelled],
                      [{"energy": 1.0, "forces": np.zeros((2, 3)), "stress": np.ones(6)},
                       {"energy": 0.0, "forces": np.zeros((1, 3)), "stress": np.zeros(6)}])
    assert m["stress"]["n"] == 0 and m["stress"]["n_skipped"] == 2
    assert m["stress"]["rmse"] is None
    assert m["energy_per_atom"]["rmse"] == 0.0 and m["energy_per_atom"]["n_skipped"] == 1
    table = format_error_table(m)
    assert "stress (GPa)" in table and "2 skipped" in table
    data = json.loads(write_errors_json(tmp_path / "e.json", m).read_text())
    assert data["stress"]["rmse"] is None and data["energy_per_atom"]["n"] == 1


def test_mismatched_inputs_are_named(dataset):
    reference, predicted = dataset
    with pytest.raises(ValueError, match="3 reference configurations but 2 predictions"):
        error_metrics(reference, predicted[:2])
    predicted[1]["forces"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match="configuration 1: forces"):
        error_metrics(reference, predicted)


def test_table_with_named_sets(dataset, tmp_path):
    m = error_metrics(*dataset)
    table = format_error_table({"train": m, "test": m})
    lines = table.splitlines()
    assert lines[0].split() == ["set", "quantity", "MAE", "RMSE", "max", "N"]
    assert len(lines) == 2 + 6
    assert lines[2].split()[:4] == ["train", "energy/atom", "(meV/atom)", "4.000"]
    assert lines[3].split()[:3] == ["forces", "(eV/Å)", "0.02857"]  # 0.6 / 21
    assert lines[5].split()[0] == "test"
    # numbers right-aligned: all rows have the same width up to the N column
    assert len({len(line) for line in lines[2:] if "skipped" not in line}) == 1
    single = format_error_table(m)
    assert single.splitlines()[0].split() == ["quantity", "MAE", "RMSE", "max", "N"]
    path = write_errors_json(tmp_path / "errors.json", {"train": m})
    assert json.loads(path.read_text())["train"]["forces"]["n"] == 21


def test_min_distance():
    fcc = bulk("Cu", "fcc", a=3.6)  # one atom: the nearest neighbour is its own image
    d, i = min_distance([fcc])
    assert (d, i) == (pytest.approx(3.6 / math.sqrt(2), rel=1e-12), 0)
    dimer = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 1.7]])
    far = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 9.0]])  # beyond the first cutoff
    assert min_distance([fcc, far, dimer]) == (pytest.approx(1.7), 2)
    assert min_distance([far]) == (pytest.approx(9.0), 0)
    assert min_distance([Atoms("Cu")]) == (math.inf, -1)
