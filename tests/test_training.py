"""Training: loss gradients (central differences), reproducibility, MPI, bad input (the design
rows against the numpy reference: test_kernel_paths.py)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from helpers.fd import central_difference

from mtplib.potential import MTPotential
from mtplib.training import (TrainingDataError, apply_forces_cap, committee_evaluate, fit,
                             prepare, scan, train_test_split)
from mtplib.kernels.mtp import product_runs
from mtplib.kernels.training import basis_dependencies
from mtplib.training.loss import loss_and_gradient, loss_terms, pack
from mtplib.training.optimize import VarProProblem
from mtplib.training.parallel import Reducer

LEVEL = 8
STEP = 1e-6


def _labelled(atoms, stress=True, forces=True):
    atoms.calc = EMT()
    e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f if forces else None,
                                       stress=s if stress else None)
    return atoms


def tiny_set(n=6, seed=0):
    """n EMT Cu/Au cells of 4-8 atoms, rattled."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.6 + 0.04 * k, cubic=True)
        if k % 3 == 0:
            atoms = atoms.repeat((1, 1, 2))
        symbols = ["Au" if rng.random() < 0.4 else "Cu" for _ in atoms]
        atoms.set_chemical_symbols(symbols)
        atoms.rattle(0.1, seed=int(rng.integers(1000)))
        out.append(_labelled(atoms))
    return out


@pytest.fixture(scope="module")
def images():
    return tiny_set()


@pytest.fixture(scope="module")
def random_pot():
    return _trained_at_level(LEVEL, 1)


def _trained_at_level(level, seed):
    pot = MTPotential.from_level(level, ["Cu", "Au"], 2.0, 4.5, 6)
    rng = np.random.default_rng(seed)
    pot.radial_coeffs = rng.uniform(-1, 1, (2, 2, pot.radial_funcs_count, 6)) * 0.3
    pot.species_coeffs = rng.normal(size=2)
    pot.moment_coeffs = rng.normal(size=pot.alpha_scalar_moments) * 0.1
    return pot


def test_basis_dependencies_are_the_reachable_products_and_basic_moments():
    """Per basis function: the runs of alpha_index_times it depends on (descending) and the
    basic moments it depends on, against a plain-Python reachability over the products."""
    pot = _trained_at_level(16, 0)
    a = pot.kernel_arrays()
    times, mapping, n_basic = a["times"], a["mapping"], len(a["basic_mu"])
    run_start, run_target, factor_a, factor_b, _ = product_runs(times)
    (_, _, _, _, s_run_ptr, s_runs, s_basic_ptr, s_basic) = basis_dependencies(
        times, mapping, n_basic, a["n_moments"])
    run_of = {int(t): r for r, t in enumerate(run_target)}
    for s, target in enumerate(mapping):
        runs, seen, todo = set(), set(), [int(target)]
        while todo:
            m = todo.pop()
            if m in seen:
                continue
            seen.add(m)
            if m in run_of:
                r = run_of[m]
                runs.add(r)
                todo += [int(x) for x in factor_a[run_start[r]:run_start[r + 1]]]
                todo += [int(x) for x in factor_b[run_start[r]:run_start[r + 1]]]
        got_runs = list(s_runs[s_run_ptr[s]:s_run_ptr[s + 1]])
        assert got_runs == sorted(runs, reverse=True), f"basis function {s}"
        assert list(s_basic[s_basic_ptr[s]:s_basic_ptr[s + 1]]) == sorted(
            m for m in seen if m < n_basic), f"basis function {s}"
    assert s_basic_ptr[-1] > len(mapping)     # most depend on several basic moments


@pytest.mark.parametrize("scaling", ["vibrations", "structures", "molecules"])
def test_loss_gradient_central_differences(images, random_pot, scaling):
    """All three weights on; every parameter group (radial, species, moment) checked."""
    pot = random_pot.copy()
    configs = prepare(images, pot, weights=(1.0, 0.01, 0.001), scaling=scaling)
    _, grad = loss_and_gradient(pot, configs)
    theta0 = pot.get_parameters()
    n_rad = pot.radial_coeffs.size
    groups = {"radial": range(0, n_rad, 5), "species": range(n_rad, n_rad + 2),
              "moment": range(n_rad + 2, len(theta0), 3)}

    def loss(theta):
        pot.set_parameters(theta)
        return loss_and_gradient(pot, configs)[0]

    for name, idx in groups.items():
        fd = central_difference(loss, theta0, STEP, idx)
        for k, fd_k in zip(idx, fd):
            assert abs(grad[k] - fd_k) <= 1e-6 * max(abs(fd_k), 1e-3 * np.abs(grad).max()), \
                (name, k, grad[k], fd_k)
    pot.set_parameters(theta0)


@pytest.mark.parametrize("ridge", [0.0, 1e-10])
def test_varpro_gradient_central_differences(images, random_pot, ridge):
    pot = random_pot.copy()
    configs = prepare(images, pot)
    batches = pack(configs, 2 + pot.alpha_scalar_moments)
    problem = VarProProblem(pot, batches, len(configs), Reducer(None), ridge=ridge)
    c0 = pot.radial_coeffs.ravel().copy()
    _, grad = problem(c0)
    idx = range(0, len(c0), 4)
    fd = central_difference(lambda c: problem(c)[0], c0, STEP, idx)
    for k, fd_k in zip(idx, fd):
        assert abs(grad[k] - fd_k) <= 1e-5 * max(abs(fd_k), np.abs(grad).max() * 1e-3), (k, grad[k], fd_k)


def test_solve_linear_ridge_keeps_well_determined_directions_exact():
    """An ill-conditioned system (eigenvalues 1 .. 1e-8, Jacobi-scaled): the 1e-10 ridge must
    not bias the solution (the VarPro gradient needs the exact minimiser), while a direction
    of eigenvalue 1e-18 stays damped."""
    from mtplib.training.optimize import solve_linear
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    scale = np.array([1e-3, 1.0, 10.0, 1e2, 1e4, 0.1])           # column magnitudes
    A_exact = q @ np.diag([1.0, 0.3, 1e-2, 1e-4, 1e-6, 1e-8]) @ q.T
    A = A_exact * np.outer(scale, scale)
    theta_true = rng.normal(size=6) / scale
    theta = solve_linear(A, A @ theta_true, ridge=1e-10)
    np.testing.assert_allclose(theta * scale, theta_true * scale, rtol=0, atol=1e-7)  # 1e-5 without refinement
    # a null direction: bounded, not blown up to 1/eps
    A_null = q @ np.diag([1.0, 0.3, 1e-2, 1e-4, 1e-6, 1e-18]) @ q.T
    theta = solve_linear(A_null, A_null @ rng.normal(size=6) + 1e-9 * q[:, 5], ridge=1e-10)
    assert np.abs(theta).max() < 1e3


def test_loss_matches_direct_evaluation(images, random_pot):
    configs = prepare(images, random_pot)
    direct, _, _ = loss_terms(random_pot, pack(configs, 2 + random_pot.alpha_scalar_moments),
                              radial_grad=False)
    expect = 0.0
    for atoms, cfg in zip(images, configs):
        r = random_pot.evaluate(atoms)
        n, V = len(atoms), atoms.get_volume()
        s = lambda v: np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])
        dW = (s(r["stress"]) - s(atoms.get_stress())) * V
        expect += ((r["energy"] - atoms.get_potential_energy()) ** 2 / n
                   + 0.01 * ((r["forces"] - atoms.get_forces()) ** 2).sum()
                   + 0.001 * (dW ** 2).sum() / n)
    assert direct == pytest.approx(expect, rel=1e-10)


def test_fit_reduces_errors_and_is_bit_reproducible(images, tmp_path):
    init = MTPotential.from_level(LEVEL, ["Cu", "Au"], 2.0, 4.5, 6)
    logs = []
    a = fit(images, init, seed=3, max_iter=8, log=logs.append)
    b = fit(images, init, seed=3, max_iter=8, log=None)
    a.save(tmp_path / "a.mtp")
    b.save(tmp_path / "b.mtp")
    assert (tmp_path / "a.mtp").read_bytes() == (tmp_path / "b.mtp").read_bytes()
    assert any(line.startswith("iter") for line in logs)
    losses = [float(line.split()[3]) for line in logs if line.startswith("iter")]
    assert losses[-1] < losses[0]
    c = fit(images, init, seed=4, max_iter=2, log=None)
    assert not np.array_equal(c.radial_coeffs, a.radial_coeffs)


def test_fast_mode_and_isolated_energies(images):
    init = MTPotential.from_level(LEVEL, ["Cu", "Au"], 2.0, 4.5, 6)
    pot = fit(images, init, optimize_radial=False, isolated_energies={"Cu": -0.5, "Au": 0.25},
              log=None)
    np.testing.assert_array_equal(pot.species_coeffs, [-0.5, 0.25])
    assert np.isfinite(pot.evaluate(images[0])["energy"])


def test_split_is_seeded_and_disjoint(images):
    tr, te = train_test_split(images, 0.34, seed=1)
    tr2, te2 = train_test_split(images, 0.34, seed=1)
    assert len(te) == 2 and len(tr) == 4
    assert [id(a) for a in te] == [id(a) for a in te2]
    assert not {id(a) for a in tr} & {id(a) for a in te}


def test_forces_cap_counts_dropped(images):
    fmax = [float(np.linalg.norm(a.get_forces(), axis=1).max()) for a in images]
    cap = float(np.median(fmax))
    logs = []
    kept, _, dropped = apply_forces_cap(images, cap, log=logs.append)
    assert dropped == sum(f > cap for f in fmax) and len(kept) == len(images) - dropped
    assert f"dropped {dropped} of {len(images)}" in logs[0]
    with pytest.raises(TrainingDataError, match="no training configurations left after forces_cap"):
        apply_forces_cap(images, 1e-9)


def test_bad_input_messages(images):
    pot = MTPotential.from_level(LEVEL, ["Cu", "Au"], 2.0, 4.5, 6)
    no_forces = [a.copy() for a in images[:3]]
    for a, src in zip(no_forces, images[:3]):
        a.calc = SinglePointCalculator(a, energy=src.get_potential_energy(),
                                       stress=src.get_stress())
    no_forces[1].info["source"] = "data.extxyz[1]"
    with pytest.raises(TrainingDataError, match=r"train\[0\]: no forces"):
        fit(no_forces, pot, log=None)
    with pytest.raises(TrainingDataError, match=r"train\[0\]: no forces while the force weight"):
        prepare(no_forces, pot)
    prepare(no_forces, pot, weights=(1, 0, 0.001))          # fine without the force weight
    no_stress = [_labelled(images[0].copy(), stress=False)]
    with pytest.raises(TrainingDataError, match=r"train\[0\]: no stress"):
        prepare(no_stress, pot)
    cu_only = MTPotential.from_level(LEVEL, ["Cu"], 2.0, 4.5, 6)
    with pytest.raises(TrainingDataError, match=r"train\[\d\].*species \['Au'\] not in the potential"):
        prepare(images, cu_only)
    with pytest.raises(TrainingDataError, match="training set is empty"):
        prepare([], pot)
    with pytest.raises(TrainingDataError, match="unknown scaling 'atoms'"):
        prepare(images, pot, scaling="atoms")


def test_scan_writes_table_and_committee(images, tmp_path):
    init = MTPotential.from_level(LEVEL, ["Cu", "Au"], 2.0, 4.5, 6)
    train, test = train_test_split(images, 0.34, seed=0)
    rows = scan(train, init, [0, 1, 2], tmp_path, test_images=test, committee_size=2,
                optimize_radial=False, log=None)
    values = [r["test.forces.rmse"] for r in rows]      # the metric names its column
    assert values == sorted(values)
    assert values[0] == json.loads((tmp_path / f"seed_{rows[0]['seed']}.json").read_text())[
        "test"]["forces"]["rmse"]
    assert (tmp_path / "scan.csv").read_text().count("\n") == 4
    assert (tmp_path / "best.mtp").read_bytes() == (tmp_path / f"seed_{rows[0]['seed']}.mtp").read_bytes()
    committee = json.loads((tmp_path / "committee.json").read_text())
    assert len(committee["members"]) == 2 and committee["seeds"][0] == rows[0]["seed"]
    for s in (0, 1, 2):
        assert (tmp_path / f"seed_{s}.json").exists()
    pots = [MTPotential.load(p) for p in committee["members"]]
    res = committee_evaluate(pots, test)
    ref = [p.evaluate(test[0])["energy"] for p in pots]
    assert res[0]["energy"] == pytest.approx(np.mean(ref), rel=1e-12)
    assert res[0]["energy_std"] == pytest.approx(np.std(ref), rel=1e-12)
    assert res[0]["forces_std"].shape == (len(test[0]), 3)


def _mpi_available():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    from shutil import which
    return which("mpiexec") is not None


@pytest.mark.skipif(not _mpi_available(), reason="mpi4py or mpiexec not available")
@pytest.mark.parametrize("optimizer", ["lbfgs", "lm"])
def test_mpi_two_ranks_match_serial(tmp_path, optimizer):
    data = tmp_path / "tiny.extxyz"
    write(data, tiny_set(20))           # two batches of BATCH_CONFIGS: one per rank
    common = [str(data), "--level", str(LEVEL), "--species", "Cu", "Au", "--max-dist", "4.5",
              "--radial-basis-size", "6", "--max-iter", "4", "--test-fraction", "0",
              "--seed", "2", "--radial-optimizer", optimizer]
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    serial = tmp_path / "serial.mtp"
    subprocess.run([sys.executable, "-m", "mtplib.training.cli", "train", *common, "--out",
                    str(serial)], check=True, env=env, capture_output=True, timeout=600)
    par = tmp_path / "mpi.mtp"
    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable, "-m", "mtplib.training.cli",
                           "train", *common, "--out", str(par)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 rank(s)" in proc.stdout
    a, b = MTPotential.load(serial), MTPotential.load(par)
    ta, tb = a.get_parameters(), b.get_parameters()
    assert np.abs(ta - tb).max() <= 1e-10 * np.abs(ta).max()


def test_diverging_run_keeps_last_good_potential(images, monkeypatch):
    import mtplib.training.optimize as opt
    real = opt.loss_terms
    calls = [0]

    def flaky(*args, **kwargs):
        calls[0] += 1
        loss, grad, stats = real(*args, **kwargs)
        return (float("nan") if calls[0] == 3 else loss), grad, stats

    monkeypatch.setattr(opt, "loss_terms", flaky)
    logs = []
    init = MTPotential.from_level(LEVEL, ["Cu", "Au"], 2.0, 4.5, 6)
    pot = fit(images, init, max_iter=10, log=logs.append)
    assert any("diverged" in line and "keeping the last good potential" in line for line in logs)
    assert np.isfinite(pot.get_parameters()).all()


def test_energy_only_radial_runs(images):
    init = MTPotential.from_level(LEVEL, ["Cu", "Au"], 2.0, 4.5, 6)
    logs = []
    pot = fit(images, init, max_iter=3, energy_only_radial=True, log=logs.append)
    assert np.isfinite(pot.evaluate(images[1])["energy"])
    assert logs[-1].startswith("final")


def test_cli_train_and_scan(images, tmp_path, capsys):
    from mtplib.training.cli import main
    data = tmp_path / "d.extxyz"
    write(data, images)
    out = tmp_path / "p.mtp"
    assert main(["train", str(data), "--level", str(LEVEL), "--max-dist", "4.5",
                 "--radial-basis-size", "6", "--max-iter", "2", "--test-fraction", "0.34",
                 "--radial-fraction", "0.5", "--out", str(out)]) == 0
    errors = json.loads(out.with_suffix(".json").read_text())
    assert set(errors) == {"train", "test"}
    assert errors["test"]["energy_per_atom"]["n_configs"] == 2
    printed = capsys.readouterr().out
    assert "energy/atom" in printed
    assert "optimised on 2 of 4 configurations" in printed
    assert main(["scan", str(data), "--level", str(LEVEL), "--max-dist", "4.5",
                 "--radial-basis-size", "6", "--fast", "--seeds", "0", "1",
                 "--committee", "1", "--out-dir", str(tmp_path / "scan")]) == 0
    assert json.loads((tmp_path / "scan" / "committee.json").read_text())["members"]
    bad = tmp_path / "nf.extxyz"
    nf = images[0].copy()
    nf.calc = SinglePointCalculator(nf, energy=1.0)
    write(bad, [nf])
    assert main(["train", str(bad), "--level", str(LEVEL), "--test-fraction", "0",
                 "--out", str(tmp_path / "x.mtp")]) == 2
    assert f"{bad}[0]: no forces" in capsys.readouterr().err


def test_warm_start_keeps_radial_coeffs(images, random_pot):
    pot = fit(images, random_pot, optimize_radial=False, log=None)
    np.testing.assert_array_equal(pot.radial_coeffs, random_pot.radial_coeffs)
    cold = fit(images, random_pot, optimize_radial=False, warm_start=False, seed=0, log=None)
    assert not np.array_equal(cold.radial_coeffs, random_pot.radial_coeffs)


def test_radial_fraction_subset_then_full_linear_solve(images):
    from mtplib.training.optimize import radial_subset
    idx = radial_subset(6, 0.5, seed=2)
    assert len(idx) == 3 and list(idx) == sorted(idx)
    np.testing.assert_array_equal(idx, radial_subset(6, 0.5, seed=2))
    assert not all(np.array_equal(idx, radial_subset(6, 0.5, seed=s)) for s in range(3, 8))
    with pytest.raises(TrainingDataError, match="radial_fraction"):
        radial_subset(6, 0.0, seed=0)
    init = MTPotential.from_level(LEVEL, ["Cu", "Au"], 2.0, 4.5, 6)
    with pytest.raises(TrainingDataError, match="radial_fraction must be in"):
        fit(images, init, radial_fraction=1.5, log=None)
    logs = []
    pot = fit(images, init, seed=2, max_iter=4, radial_fraction=0.5, log=logs.append)
    assert any("optimised on 3 of 6 configurations" in line for line in logs)
    again = fit(images, init, seed=2, max_iter=4, radial_fraction=0.5, log=None)
    np.testing.assert_array_equal(pot.get_parameters(), again.get_parameters())
    # the linear coefficients are the exact solve on all six configurations
    batches = pack(prepare(images, pot), pot.species_count + pot.alpha_scalar_moments)
    full = VarProProblem(pot.copy(), batches, 6, Reducer(None))
    theta = full.solve(pot.radial_coeffs.ravel())
    np.testing.assert_allclose(np.concatenate([pot.species_coeffs, pot.moment_coeffs]), theta,
                               rtol=1e-12, atol=1e-12)
    sub = [images[i] for i in idx]
    part = VarProProblem(pot.copy(), pack(prepare(sub, pot), len(theta)), 3, Reducer(None))
    assert not np.allclose(part.solve(pot.radial_coeffs.ravel()), theta, rtol=1e-6)


def test_relative_stop_counts_the_decrease_over_its_window():
    from mtplib.training.optimize import RelativeStop
    stop = RelativeStop(tol=1e-3, window=3)
    # 1e-5 -> 0.9e-5 over three iterations is a 10 % decrease: not converged at any scale
    assert not any(stop.converged(x) for x in (1e-5, 0.97e-5, 0.93e-5, 0.9e-5))
    stop = RelativeStop(tol=1e-3, window=3)
    flat = [1e-5, 1e-5 * (1 - 1e-4), 1e-5 * (1 - 2e-4), 1e-5 * (1 - 3e-4)]
    assert [stop.converged(x) for x in flat] == [False, False, False, True]


def test_fit_stopping_does_not_depend_on_the_loss_scale(images):
    """The optimum does not change when every weight is scaled by 1e-6, nor should the stop.

    (With L-BFGS-B's ftol, an absolute test for losses below 1, the scaled fit stopped after
    its first iterations.)"""
    init = MTPotential.from_level(LEVEL, ["Cu", "Au"], 2.0, 4.5, 6)
    logs, plain, scaled = [], [], []
    a = fit(images, init, seed=1, max_iter=30, log=logs.append, history=plain)
    b = fit(images, init, seed=1, max_iter=30, weights=tuple(1e-6 * w for w in (1.0, 0.01, 0.001)),
            log=None, history=scaled)
    assert len(scaled) == len(plain) > 20, (len(plain), len(scaled))
    np.testing.assert_allclose(scaled[-1]["loss"], 1e-6 * plain[-1]["loss"], rtol=1e-3)
    e_a = [a.evaluate(x)["energy"] for x in images]
    e_b = [b.evaluate(x)["energy"] for x in images]
    np.testing.assert_allclose(e_b, e_a, rtol=0, atol=2e-3)   # paths drift apart by rounding
    assert any(line.startswith(f"L-BFGS-B stopped after {len(plain)} iterations")
               for line in logs), logs[-3:]
