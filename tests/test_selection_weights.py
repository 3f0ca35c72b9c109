"""MLIP-3's selection weights: force and stress rows, defaults, state files, selection, CLI."""
import filecmp

import numpy as np
import pytest

from mtplib.active import ActiveSet, ActiveSetError, SelectionWeights, select_add
from mtplib.active.grade import evaluate_with_gradients, jacobian_rows
from mtplib.active.testing import emt_cells, linear_fit, random_radial, tiny_potential
from mtplib.cli import main


@pytest.fixture(scope="module")
def fitted():
    train = emt_cells(12, repeat=(1, 1, 2), seed=1)
    pot = linear_fit(random_radial(tiny_potential(8), seed=3), train, keep_radial=True)
    pot.source = "cu.mtp"
    return pot, train


def _fd_over_parameters(pot, atoms, quantity, step=1e-6):
    """d quantity / d theta by central differences over every parameter (get/set_parameters)."""
    theta = pot.get_parameters()
    cols = []
    try:
        for k in range(len(theta)):
            h = step * (1.0 + abs(theta[k]))
            up, down = theta.copy(), theta.copy()
            up[k] += h
            down[k] -= h
            pot.set_parameters(up)
            q_up = quantity(pot, atoms)
            pot.set_parameters(down)
            q_dn = quantity(pot, atoms)
            cols.append((q_up - q_dn) / (up[k] - down[k]))
    finally:
        pot.set_parameters(theta)
    return np.array(cols).T


def _forces(pot, atoms):
    return pot.evaluate(atoms)["forces"].ravel()


def _virial(pot, atoms):
    """The symmetrised virial (stress x |volume|), row-major 3x3, from evaluate's stress."""
    xx, yy, zz, yz, xz, xy = pot.evaluate(atoms)["stress"] * abs(atoms.get_volume())
    return np.array([xx, xy, xz, xy, yy, yz, xz, yz, zz])


def test_force_rows_equal_finite_differences(fitted):
    pot, _ = fitted
    atoms = emt_cells(1, repeat=(1, 1, 2), rattle=0.15, seed=11)[0]
    res = evaluate_with_gradients(pot, atoms, weights=SelectionWeights(energy=0, forces=1))
    rows = res["rows"]
    assert rows.shape == (3 * len(atoms), pot.parameter_count)
    np.testing.assert_array_equal(res["row_atoms"], np.repeat(np.arange(len(atoms)), 3))
    fd = _fd_over_parameters(pot, atoms, _forces)
    assert np.abs(rows - fd).max() <= 1e-5 * np.abs(fd).max()
    # the radial columns are not zero (the finite differences run): the test can fail
    n_rad = pot.radial_coeffs.size
    assert np.abs(rows[:, :n_rad]).max() > 1e-3 * np.abs(fd).max()


def test_stress_rows_equal_finite_differences(fitted):
    pot, _ = fitted
    atoms = emt_cells(1, repeat=(1, 1, 2), rattle=0.15, strain=0.05, seed=12)[0]
    w = 0.7
    res = evaluate_with_gradients(pot, atoms, weights=SelectionWeights(energy=0, stress=w))
    rows = res["rows"]
    assert rows.shape == (9, pot.parameter_count)
    fd = w * _fd_over_parameters(pot, atoms, _virial) / len(atoms)
    assert np.abs(rows - fd).max() <= 1e-5 * np.abs(fd).max()


def test_all_rows_in_mlip_order(fitted):
    pot, _ = fitted
    atoms = emt_cells(1, repeat=(1, 1, 2), rattle=0.1, seed=13)[0]
    n = len(atoms)
    full = evaluate_with_gradients(pot, atoms, weights=SelectionWeights(2.0, 3.0, 5.0, 7.0))
    site = evaluate_with_gradients(pot, atoms, per_atom=True)["rows"]
    forces = evaluate_with_gradients(pot, atoms, weights=SelectionWeights(0, 1, 0, 0))["rows"]
    stress = evaluate_with_gradients(pot, atoms, weights=SelectionWeights(0, 0, 1, 0))["rows"]
    rows = full["rows"]
    assert rows.shape == (n + 1 + 3 * n + 9, pot.parameter_count)
    np.testing.assert_allclose(rows[:n], 7.0 * site, rtol=1e-14)
    np.testing.assert_allclose(rows[n], 2.0 * site.sum(axis=0) / n, rtol=1e-12,
                               atol=1e-14 * np.abs(site).max())
    np.testing.assert_allclose(rows[n + 1:4 * n + 1], 3.0 * forces, rtol=1e-14)
    np.testing.assert_allclose(rows[4 * n + 1:], 5.0 * stress, rtol=1e-14)
    assert list(full["row_atoms"]) == list(range(n)) + [-1] + list(np.repeat(range(n), 3)) + [-1] * 9


@pytest.mark.parametrize("mode", ["configuration", "neighborhood"])
def test_default_weights_are_the_plain_modes_bit_for_bit(fitted, tmp_path, mode):
    pot, train = fitted
    weights = SelectionWeights(energy=1.0) if mode == "configuration" else \
        SelectionWeights(energy=0.0, site_energy=1.0)
    assert weights == SelectionWeights.for_mode(mode) and weights.mode == mode
    plain_rows, plain_owners = jacobian_rows(pot, train, mode)
    rows, owners = jacobian_rows(pot, train, mode, weights=weights)
    np.testing.assert_array_equal(rows, plain_rows)
    np.testing.assert_array_equal(owners, plain_owners)
    # the general path (selection_rows) reproduces today's rows exactly as well
    for atoms in train[:3]:
        general = evaluate_with_gradients(pot, atoms, weights=weights)["rows"]
        plain = evaluate_with_gradients(pot, atoms, per_atom=mode == "neighborhood")["rows"]
        np.testing.assert_array_equal(general, plain)
    a = ActiveSet.from_training(pot, train, mode=mode)
    b = ActiveSet.from_training(pot, train, weights=weights.as_dict())
    a.save(tmp_path / "a.als.npz")
    b.save(tmp_path / "b.als.npz")
    assert filecmp.cmp(tmp_path / "a.als.npz", tmp_path / "b.als.npz", shallow=False)
    np.testing.assert_array_equal(a.grade_many(train[:4]), b.grade_many(train[:4]))
    with np.load(tmp_path / "a.als.npz") as data:
        assert "selection_weights" not in data.files        # an old file is a default file
    assert ActiveSet.load(tmp_path / "a.als.npz", pot).weights == weights


def test_state_round_trip_keeps_the_weights(fitted, tmp_path):
    pot, train = fitted
    weights = SelectionWeights(energy=1.0, forces=0.5, stress=0.25, site_energy=0.0)
    aset = ActiveSet.from_training(pot, train[:6], weights=weights)
    aset.save(tmp_path / "w.als.npz")
    back = ActiveSet.load(tmp_path / "w.als.npz", pot)
    assert back.weights == weights and back.mode == "configuration"
    atoms = emt_cells(1, repeat=(1, 1, 2), rattle=0.2, seed=21)[0]
    assert back.evaluate(atoms)["gamma"] == aset.evaluate(atoms)["gamma"]
    # a dict's missing weights are the mode's defaults (neighbourhood: site energy 1, energy 0)
    nbh = ActiveSet.from_training(pot, train[:4], mode="neighborhood", weights=dict(forces=1.0))
    assert nbh.weights == SelectionWeights(energy=0.0, forces=1.0, site_energy=1.0)
    assert nbh.mode == "neighborhood"
    nbh.save(tmp_path / "n.als.npz")
    assert ActiveSet.load(tmp_path / "n.als.npz", pot).weights == nbh.weights


def test_force_rows_grade_members_one_and_training_interpolates(fitted):
    pot, train = fitted
    aset = ActiveSet.from_training(pot, train, weights=dict(energy=1.0, forces=1.0))
    gamma = aset.grade_many([a.copy() for a in train])
    assert gamma.max() <= 1.0 + 1e-6
    for cfg in aset.member_configurations:
        assert gamma[cfg] >= 1.0 - 1e-9
    res = aset.evaluate(train[0])
    assert res["gamma_atoms"].shape == (len(train[0]),)       # from the force rows
    assert res["gamma_atoms"].max() <= res["gamma"]
    # energy rows alone: 12 rows for 22 parameters leave at least 10 directions virtual;
    # the force rows fill all but the exact null directions of the Jacobian
    energy_only = ActiveSet.from_training(pot, train)
    assert energy_only.n_virtual >= 10 and aset.n_virtual <= 3


def test_select_add_with_force_rows(fitted):
    pot, train = fitted
    aset = ActiveSet.from_training(pot, train, weights=dict(energy=1.0, forces=1.0))
    pool = emt_cells(6, repeat=(1, 1, 2), seed=5, rattle=0.3, strain=0.08)
    sel = select_add(aset, pool)
    assert len(sel.selected) >= 1
    assert all(sel.gamma[k] > 1.001 for k in sel.selected)
    assert sel.state.log_det > np.linalg.slogdet(aset.A)[1]
    rows, _ = jacobian_rows(pot, pool, weights=aset.weights)
    assert rows.shape[0] == sum(1 + 3 * len(a) for a in pool)
    assert np.abs(rows @ sel.state.Ainv).max() <= 1.001 + 1e-9


def test_native_md_grade_equals_active_set_evaluate(fitted):
    from mtplib.md import ArrayForces
    pot, train = fitted
    aset = ActiveSet.from_training(pot, train, weights=dict(energy=1.0, forces=1.0, stress=1.0))
    atoms = emt_cells(1, repeat=(1, 1, 2), rattle=0.2, seed=31)[0]
    graded = ArrayForces(pot, atoms, active_set=aset)(atoms.positions.copy(), grade=True)
    ref = aset.evaluate(atoms)
    assert graded["gamma"] == ref["gamma"]
    np.testing.assert_array_equal(graded["gamma_atoms"], ref["gamma_atoms"])


@pytest.mark.parametrize("bad", [dict(forces=-1.0), dict(energy=0.0), dict(stress=float("nan"))])
def test_bad_weights_raise_one_line(bad):
    with pytest.raises(ActiveSetError) as err:
        SelectionWeights.of(bad, "configuration", where="active_learning.selection_weights")
    assert "\n" not in str(err.value) and "selection_weights" in str(err.value)


@pytest.mark.parametrize("options, message", [
    (["--force-weight", "-1"], "--force-weight: -1 is not a number >= 0"),
    (["--energy-weight", "0"], "all selection weights are zero"),
    (["--mode", "neighborhood", "--site-en-weight", "0", "--force-weight", "1"],
     "--mode neighborhood needs --site-en-weight > 0"),
])
def test_cli_bad_weights_one_line(fitted, tmp_path, capsys, options, message):
    from mtplib.io import write_dataset
    pot, train = fitted
    pot.save(tmp_path / "cu.mtp")
    write_dataset(tmp_path / "train.cfg", train, species=["Cu"])
    try:
        code = main(["grade", str(tmp_path / "cu.mtp"), str(tmp_path / "train.cfg"),
                     str(tmp_path / "train.cfg"), str(tmp_path / "out.cfg"), "--species", "Cu",
                     *options])
    except SystemExit as exc:          # argparse's one-line error (mtplib.cli.Parser)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_cli_grade_with_force_weights_writes_weights(fitted, tmp_path, capsys):
    from mtplib.io import write_dataset
    pot, train = fitted
    pot.save(tmp_path / "cu.mtp")
    write_dataset(tmp_path / "train.cfg", train, species=["Cu"])
    code = main(["grade", str(tmp_path / "cu.mtp"), str(tmp_path / "train.cfg"),
                 str(tmp_path / "train.cfg"), str(tmp_path / "out.cfg"), "--species", "Cu",
                 "--force-weight", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "selection weights: energy 1, forces 1" in out
    state = ActiveSet.load(tmp_path / "cu.als.npz", ActiveSet.from_training(
        pot, train[:1]).potential)
    assert state.weights == SelectionWeights(energy=1.0, forces=1.0)


def _config(**weights):
    from pathlib import Path

    import yaml
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "examples" /
                             "cuau_tiny.yaml").read_text())
    al = config.setdefault("active_learning", {})
    al["selection_mode"] = "configuration"
    al["selection_weights"] = weights
    return config


def test_config_selection_weights():
    from scripts.mtpflow.settings import ActiveLearningSettings, build, validate_config
    config = validate_config(_config(), read_files=False)
    assert config["active_learning"]["selection_weights"] == dict.fromkeys(
        ["energy", "forces", "stress", "site_energy"])
    al = build(ActiveLearningSettings, config["active_learning"])
    assert al.weights() == SelectionWeights()
    config = validate_config(_config(forces=1.0), read_files=False)
    al = build(ActiveLearningSettings, config["active_learning"])
    assert al.weights() == SelectionWeights(energy=1.0, forces=1.0)
    assert al.iteration_params()["selection_weights"]["forces"] == 1.0


@pytest.mark.parametrize("weights, message", [
    (dict(site_energy=1.0), "site_energy must be 0 with 'active_learning.selection_mode' = 'configuration'"),
    (dict(energy=0.0), "all selection weights are zero"),
    (dict(forces=-1.0), "selection_weights.forces"),
])
def test_config_bad_selection_weights_one_line(weights, message):
    from scripts.mtpflow.settings import ConfigError, validate_config
    with pytest.raises(ConfigError) as err:
        validate_config(_config(**weights), read_files=False)
    assert "\n" not in str(err.value) and message in str(err.value), str(err.value)
    assert "selection_weights" in str(err.value)
