"""Active set and extrapolation grade on a tiny fitted Cu MTP (EMT labels)."""

import numpy as np
import pytest
from ase.build import bulk

from mtplib.active import (ActiveSet, ActiveSetError, UnderdeterminedWarning,
                           evaluate_with_gradients, state_path_for)
from mtplib.active.testing import emt_cells, linear_fit, tiny_potential
from mtplib.potential import MTPInputError


@pytest.fixture(scope="module")
def fitted():
    train = emt_cells(30, seed=1)
    pot = linear_fit(tiny_potential(8), train)
    pot.source = "cu.mtp"
    return pot, train


@pytest.fixture(scope="module", params=["configuration", "neighborhood"])
def active(request, fitted):
    pot, train = fitted
    return ActiveSet.from_training(pot, train, mode=request.param), train


def test_grade_path_equals_plain_evaluation(fitted):
    pot, train = fitted
    for atoms in train[:3] + emt_cells(1, repeat=(1, 1, 2), symbols=("Cu",), seed=7):
        plain = pot.evaluate(atoms)
        for per_atom in (False, True):
            graded = evaluate_with_gradients(pot, atoms, per_atom=per_atom)
            assert graded["energy"] == plain["energy"]
            np.testing.assert_array_equal(graded["forces"], plain["forces"])
            np.testing.assert_array_equal(graded["stress"], plain["stress"])
            np.testing.assert_array_equal(graded["energies"], plain["energies"])
        _, dE = pot.site_energy_gradients(atoms)
        np.testing.assert_allclose(evaluate_with_gradients(pot, atoms, per_atom=True)["rows"], dE,
                                   rtol=1e-12, atol=1e-12 * np.abs(dE).max())
        np.testing.assert_allclose(evaluate_with_gradients(pot, atoms)["rows"][0], dE.mean(axis=0),
                                   rtol=1e-10, atol=1e-12 * np.abs(dE).max())


def test_active_set_evaluate_equals_plain(active):
    aset, train = active
    atoms = train[4]
    res = aset.evaluate(atoms)
    plain = aset.potential.evaluate(atoms)
    assert res["energy"] == plain["energy"]
    np.testing.assert_array_equal(res["forces"], plain["forces"])
    np.testing.assert_array_equal(res["stress"], plain["stress"])


def test_members_have_gamma_one_and_training_set_interpolates(active):
    aset, train = active
    assert aset.n_virtual < aset.size
    for cfg, atom in aset.members[aset.members[:, 0] >= 0]:
        atoms = train[cfg].copy()
        aset.grade(atoms)
        if aset.mode == "configuration":
            assert atoms.info["gamma"] == pytest.approx(1.0, abs=1e-8)
        else:
            assert atoms.arrays["gamma"][atom] == pytest.approx(1.0, abs=1e-8)
    gammas = aset.grade_many([a.copy() for a in train])
    assert gammas.max() <= 1 + 1e-6


@pytest.mark.filterwarnings("ignore:.*closer than min_dist")
def test_gamma_grows_under_compression(active):
    aset, train = active
    atoms = train[aset.member_configurations[0]]
    gammas = []
    for strain in (0.0, 0.05, 0.10, 0.20):
        c = atoms.copy()
        c.set_cell(c.cell * (1 - strain), scale_atoms=True)
        gammas.append(aset.grade(c))
    assert gammas[0] <= 1 + 1e-6
    assert all(b > a for a, b in zip(gammas, gammas[1:])), gammas
    assert gammas[-1] > 2.0


def test_neighborhood_gamma_per_atom(fitted):
    pot, train = fitted
    aset = ActiveSet.from_training(pot, train, mode="neighborhood")
    atoms = train[0].copy()
    atoms.positions[3] += (0.6, 0.0, 0.0)
    gamma = aset.grade(atoms)
    assert atoms.arrays["gamma"].shape == (len(atoms),)
    assert gamma == pytest.approx(atoms.arrays["gamma"].max())
    assert atoms.info["gamma"] == gamma


def test_state_round_trip_and_wrong_potential(tmp_path, fitted):
    pot, train = fitted
    aset = ActiveSet.from_training(pot, train)
    pot_path = tmp_path / "cu.mtp"
    pot.save(pot_path)
    path = state_path_for(pot_path)
    assert path.name == "cu.als.npz"
    aset.save(path)
    from mtplib.potential import MTPotential
    loaded_pot = MTPotential.load(pot_path, species=["Cu"])
    again = ActiveSet.load(path, loaded_pot)
    np.testing.assert_array_equal(again.Ainv, aset.Ainv)
    assert again.grade(train[3].copy()) == pytest.approx(aset.grade(train[3].copy()), rel=1e-12)
    other = loaded_pot.copy()
    other.moment_coeffs = other.moment_coeffs * 1.01
    other.source = str(tmp_path / "other.mtp")
    with pytest.raises(ActiveSetError, match=r"cu\.als\.npz: this active-set state was built for "
                                             r"the potential cu\.mtp .* not for .*other\.mtp"):
        ActiveSet.load(path, other)


def test_state_missing_and_garbage(tmp_path, fitted):
    pot, _ = fitted
    with pytest.raises(ActiveSetError, match="nope.als.npz: no such active-set state file"):
        ActiveSet.load(tmp_path / "nope.als.npz", pot)
    bad = tmp_path / "bad.als.npz"
    bad.write_text("not a zip")
    with pytest.raises(ActiveSetError, match="bad.als.npz: not an active-set state file"):
        ActiveSet.load(bad, pot)


def test_small_training_set_says_underdetermined(fitted):
    pot, train = fitted
    with pytest.warns(UnderdeterminedWarning,
                      match=rf"tiny set \(5 configurations\): 5 rows for "
                            rf"{pot.parameter_count} parameters: the active set is underdetermined"):
        aset = ActiveSet.from_training(pot, train[:5], where="tiny set")
    assert aset.n_virtual >= pot.parameter_count - 5
    assert aset.grade_many([a.copy() for a in train[:5]]).max() <= 1 + 1e-6
    assert aset.grade(train[10].copy()) > 10      # outside the span of 5 rows: extrapolation


def test_unknown_species_message(active):
    aset, _ = active
    atoms = bulk("Au", "fcc", a=4.08, cubic=True)
    with pytest.raises(MTPInputError, match=r"gold cell: species \['Au'\] not in the potential cu\.mtp"):
        aset.evaluate(atoms, where="gold cell")


def test_changed_potential_detected(fitted):
    pot, train = fitted
    other = pot.copy()
    aset = ActiveSet.from_training(other, train)
    other.moment_coeffs = other.moment_coeffs + 1e-3
    with pytest.raises(ActiveSetError, match="changed since its active set was built"):
        aset.check_potential()
