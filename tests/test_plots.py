"""mtplib.analysis.plots: every figure is written, non-empty, and a PNG."""

import math

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from mtplib.analysis.plots import (error_histograms, learning_curve_plot, parity_plots,
                                   robust_range, seed_error_plot)

PNG = b"\x89PNG\r\n\x1a\n"


def _set(n_conf, seed, noise):
    rng = np.random.default_rng(seed)
    reference, predicted = [], []
    for i in range(n_conf):
        n = 2 + i % 3
        atoms = Atoms(f"Cu{n}", positions=rng.uniform(0, 5, (n, 3)), cell=np.eye(3) * 6,
                      pbc=i % 4 != 3)  # every fourth one non-periodic: no stress
        e, f, s = rng.normal() * n, rng.normal(size=(n, 3)), rng.normal(size=6) * 1e-2
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f,
                                           stress=s if atoms.pbc.all() else None)
        reference.append(atoms)
        predicted.append({"energy": e + noise * rng.normal(),
                          "forces": f + noise * rng.normal(size=f.shape),
                          "stress": s + 1e-3 * noise * rng.normal(size=6),
                          "energies": np.full(n, e / n)})
    return reference, predicted


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG)


@pytest.fixture(scope="module")
def sets():
    return {"train": _set(12, 0, 0.01), "test": _set(5, 1, 0.03)}


def test_parity_and_histograms(sets, tmp_path):
    assert _is_png(parity_plots(sets, tmp_path / "parity.png"))
    assert _is_png(error_histograms(sets, tmp_path / "hist.png"))


def test_panels_without_data(tmp_path):
    cluster = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2]])
    cluster.calc = SinglePointCalculator(cluster, energy=1.0)  # no forces, no stress
    sets = {"only": ([cluster], [{"energy": 1.1, "forces": np.zeros((2, 3))}])}
    assert _is_png(parity_plots(sets, tmp_path / "p.png"))
    assert _is_png(error_histograms(sets, tmp_path / "h.png"))


def test_seed_error_plot(tmp_path):
    table = [{"seed": s, "force_rmse_test": 0.05 + 0.01 * ((s * 7) % 5)} for s in range(8)]
    table.append({"seed": 8, "force_rmse_test": math.nan})  # a failed run
    table.append({"seed": 9})
    assert _is_png(seed_error_plot(table, "force_rmse_test", tmp_path / "seeds.png"))
    assert _is_png(seed_error_plot([], "force_rmse_test", tmp_path / "none.png"))


def test_learning_curve_plot(tmp_path):
    records = [
        {"iteration": 0, "steps_survived": {"nvt_600K": 120, "npt_1200K": 40},
         "force_rmse_test": 0.12},
        {"iteration": 1, "steps_survived": {"nvt_600K": 900, "npt_1200K": 300},
         "force_rmse_test": 0.08},
        {"iteration": 2, "steps_survived": {"nvt_600K": 5000, "npt_1200K": 5000},
         "force_rmse_test": None},
    ]
    assert _is_png(learning_curve_plot(records, tmp_path / "al.png"))
    plain = [{"iteration": i, "steps_survived": 10 * i, "force_rmse_test": 0.1 / (i + 1)}
             for i in range(3)]
    assert _is_png(learning_curve_plot(plain, tmp_path / "al2.png"))


def test_robust_range_ignores_a_few_extreme_values():
    values = np.concatenate([np.random.default_rng(0).normal(0.0, 1.0, 2000), [15.0, -15.0]])
    lo, hi, outside = robust_range(values)
    assert -4.0 < lo < -2.5 and 2.5 < hi < 4.0      # not stretched to ±15 by two outliers
    assert outside >= 2
    lo, hi, outside = robust_range([0.0, 1.0])       # few values: all of them, padded
    assert (lo, hi, outside) == (-0.1, 1.1, 0)


def test_seed_error_plot_labels_and_panels(tmp_path):
    from mtplib.analysis.errors import describe_metric, metric_label
    assert metric_label("test.forces.rmse") == "test force RMSE (eV/Å)"
    assert describe_metric("test.forces.rmse", 0.0326452) == "test force RMSE = 0.03265 eV/Å"
    two = [{"seed": 0, "test.forces.rmse": 0.03}, {"seed": 1, "test.forces.rmse": 0.0326}]
    assert _is_png(seed_error_plot(two, "test.forces.rmse", tmp_path / "two.png"))
    from PIL import Image
    width_two = Image.open(tmp_path / "two.png").size[0]
    eight = [{"seed": s, "test.forces.rmse": 0.03 + 0.001 * s} for s in range(8)]
    seed_error_plot(eight, "test.forces.rmse", tmp_path / "eight.png")
    assert Image.open(tmp_path / "eight.png").size[0] > width_two   # box plot panel added
