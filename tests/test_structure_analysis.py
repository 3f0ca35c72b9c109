"""RDF/ADF on analytic cases: an ideal fcc crystal, tetrahedral and octahedral clusters."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from mtplib.analysis.structure import (adf, compare_curves, coordination_numbers, first_minimum,
                                       peak_positions, rdf, resolve_cutoffs)

A = 3.6


@pytest.fixture(scope="module")
def fcc_rdf():
    atoms = bulk("Cu", "fcc", a=A, cubic=True).repeat(3)
    return rdf([atoms], r_max=5.5, bins=550)


def test_fcc_rdf_peaks_at_the_shell_radii(fcc_rdf):
    r, g, _ = fcc_rdf
    peaks = peak_positions(r, g["Cu-Cu"])
    expected = [A / np.sqrt(2), A, A * np.sqrt(1.5), A * np.sqrt(2)]
    assert len(peaks) == 4
    np.testing.assert_allclose(peaks, expected, atol=0.01)


def test_fcc_coordination_numbers_12_and_6(fcc_rdf):
    r, g, density = fcc_rdf
    assert density["Cu"] == pytest.approx(4 / A**3)
    n = coordination_numbers(r, g["Cu-Cu"], density["Cu"])
    first_gap = np.searchsorted(r, 3.0)       # between a/sqrt2 = 2.55 and a = 3.6
    second_gap = np.searchsorted(r, 4.0)      # between a = 3.6 and a sqrt(1.5) = 4.41
    assert n[first_gap] == pytest.approx(12.0, abs=1e-9)
    assert n[second_gap] - n[first_gap] == pytest.approx(6.0, abs=1e-9)
    # the first minimum lies in the empty gap between the first two shells
    assert 2.6 < first_minimum(r, g["Cu-Cu"]) < 3.55


def test_rdf_of_an_ideal_gas_tends_to_one():
    rng = np.random.default_rng(0)
    frames = [Atoms("Cu200Au100", positions=rng.random((300, 3)) * 15.0, cell=[15.0] * 3, pbc=True)
              for _ in range(5)]
    r, g, _ = rdf(frames, r_max=6.0, bins=30, elements=["Cu", "Au"])
    assert set(g) == {"Cu-Cu", "Cu-Au", "Au-Au"}
    for key, curve in g.items():
        assert curve[10:].mean() == pytest.approx(1.0, abs=0.05), key


def test_tetrahedral_cluster_angles():
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3) * 1.5
    atoms = Atoms("SiH4", positions=np.vstack([[0, 0, 0], v]) + 5.0)
    theta, p, counts = adf([atoms], {"Si-Si": 1.0, "Si-H": 2.0, "H-H": 1.0}, bins=1800,
                           elements=["Si", "H"])
    assert counts == {"H-Si-H": 6}
    assert peak_positions(theta, p["H-Si-H"]) == pytest.approx([109.47], abs=0.05)
    assert (p["H-Si-H"].sum() * (theta[1] - theta[0])) == pytest.approx(1.0)


def test_octahedral_cluster_angles():
    v = np.vstack([np.eye(3), -np.eye(3)]) * 2.0
    atoms = Atoms("SF6", positions=np.vstack([[0, 0, 0], v]) + 6.0)
    theta, p, counts = adf([atoms], resolve_cutoffs({"S-F": 2.2, "F-F": 1.0, "S-S": 1.0},
                                                    ["S", "F"]), bins=180, elements=["S", "F"])
    assert counts == {"F-S-F": 15}
    hist = p["F-S-F"] * (theta[1] - theta[0]) * 15
    assert hist[np.searchsorted(theta, 90.0) - 1:np.searchsorted(theta, 90.0) + 1].sum() == pytest.approx(12)
    assert hist[-1] == pytest.approx(3)


def test_identical_curves_have_no_difference_and_a_shift_is_measured(fcc_rdf):
    r, g, _ = fcc_rdf
    same = compare_curves(r, g, g)["Cu-Cu"]
    assert same["integrated_absolute_difference"] == 0.0 and same["first_peak_shift"] == 0.0
    shifted = {"Cu-Cu": np.roll(g["Cu-Cu"], 5)}
    diff = compare_curves(r, shifted, g)["Cu-Cu"]
    assert diff["first_peak_shift"] == pytest.approx(0.05, abs=1e-9)
    assert diff["integrated_absolute_difference"] > 0.1


def test_missing_cutoff_names_the_pair():
    with pytest.raises(ValueError, match="Cu-Au"):
        resolve_cutoffs({"Cu-Cu": 3.0, "Au-Au": 3.0}, ["Cu", "Au"])


def test_first_peak_shift_of_one_bin_is_the_bin_width():
    """Peaks one bin apart on the validation's grid (6 Å / 200 bins) shift by exactly 0.03 Å,
    so that a tolerance of 0.03 Å admits them (the difference of the two bin centres reads
    0.030000000000000027 unrounded)."""
    edges = np.linspace(0.0, 6.0, 201)
    x = 0.5 * (edges[1:] + edges[:-1])
    k = int(np.searchsorted(x, 1.96))
    f, g = np.zeros_like(x), np.zeros_like(x)
    f[k + 1], g[k] = 1.0, 1.0
    shift = compare_curves(x, {"Hf-O": f}, {"Hf-O": g})["Hf-O"]["first_peak_shift"]
    assert shift == 0.03 and abs(shift) <= 0.03
