"""Levenberg-Marquardt over the radial coefficients: its Jacobian and gradient against the
VarPro gradient and the design rows, its Gauss-Newton matrix against the projected loss,
monotone and reproducible fits, and bad input."""
import numpy as np
import pytest

from helpers.fd import central_difference
from test_training import LEVEL, random_pot, tiny_set  # noqa: F401  (fixture and data)

from mtplib.potential import MTPotential
from mtplib.training import TrainingDataError, fit, prepare
from mtplib.training.levenberg import batch_predictions, gauss_newton_terms, radial_jacobian
from mtplib.training.loss import _k, normal_equations, pack
from mtplib.training.optimize import VarProProblem
from mtplib.training.parallel import Reducer


@pytest.fixture(scope="module")
def images():
    return tiny_set()


def _problem(pot, images, **kw):
    configs = prepare(images, pot)
    batches = pack(configs, pot.species_count + pot.alpha_scalar_moments)
    return VarProProblem(pot, batches, len(configs), Reducer(None), **kw)


def test_predictions_are_the_design_rows_times_theta(images, random_pot):
    """The rows LM differentiates are those the linear solve fits: X theta, row for row."""
    problem = _problem(random_pot.copy(), images)
    problem.loss_at(problem.pot.radial_coeffs.ravel().copy())
    pot = problem.pot
    a = pot.kernel_arrays()
    theta = np.concatenate([pot.species_coeffs, pot.moment_coeffs])
    for X, bt in zip(problem.designs, problem.configs):
        pred = batch_predictions(bt, _k(pot), a["species_coeffs"], a["moment_coeffs"],
                                 a["n_moments"], True)
        np.testing.assert_allclose(pred, X @ theta, rtol=0, atol=1e-10 * np.abs(pred).max())


@pytest.mark.parametrize("energy_only", [False, True])
def test_gauss_newton_gradient_is_the_varpro_gradient(images, random_pot, energy_only):
    """2 J^T W r / K (forward-difference J) equals the analytic VarPro gradient. (Energy
    only: 16 configurations, so that the 11 linear parameters leave residuals.)"""
    data = tiny_set(16) if energy_only else images
    problem = _problem(random_pot.copy(), data, energy_only=energy_only)
    c = problem.pot.radial_coeffs.ravel().copy()
    _, grad = problem(c)
    problem.loss_at(c)
    _, g = gauss_newton_terms(problem)
    np.testing.assert_allclose(2.0 * g / problem.K, grad, rtol=0,
                               atol=2e-5 * np.abs(grad).max())


def test_jacobian_matches_central_differences_of_the_design(images, random_pot):
    pot = random_pot.copy()
    problem = _problem(pot, images)
    c0 = pot.radial_coeffs.copy()
    problem.loss_at(c0.ravel())
    theta = np.concatenate([pot.species_coeffs, pot.moment_coeffs])
    bt = problem.configs[0]
    J = radial_jacobian(pot, bt)

    def design_times_theta(c):
        pot.radial_coeffs = c.reshape(c0.shape)
        keep = []
        normal_equations(pot, [bt], keep=keep)
        return keep[0] @ theta

    idx = range(0, c0.size, 5)
    fd = central_difference(design_times_theta, c0.ravel(), 1e-5, idx)
    for j, fd_j in zip(idx, fd):
        np.testing.assert_allclose(J[:, j], fd_j, rtol=0, atol=1e-4 * max(np.abs(fd_j).max(), 1e-8))
    pot.radial_coeffs = c0


def test_gauss_newton_matrix_is_the_hessian_of_the_projected_loss_at_zero_residual(
        images, random_pot):
    """Labels made by the potential itself: at its radial coefficients the residuals vanish,
    so Kaufman's H is the exact Hessian of the projected loss, L(c + t d) = t^2 d.H.d / K
    + O(t^3). (Without the projection term, J^T W J alone, the ratio is off by far more:
    the linear coefficients re-adjust along d.)"""
    from ase.calculators.singlepoint import SinglePointCalculator
    labelled = []
    for atoms in images:
        r = random_pot.evaluate(atoms)
        atoms = atoms.copy()
        atoms.calc = SinglePointCalculator(atoms, energy=r["energy"], forces=r["forces"],
                                           stress=r["stress"])
        labelled.append(atoms)
    problem = _problem(random_pot.copy(), labelled, ridge=0.0)
    c = random_pot.radial_coeffs.ravel().copy()
    assert problem.loss_at(c) < 1e-20
    H, g = gauss_newton_terms(problem)
    assert np.abs(g).max() < 1e-8
    assert np.linalg.eigvalsh(H).min() >= -1e-8 * np.abs(H).max()
    rng = np.random.default_rng(0)
    for _ in range(3):
        d = rng.normal(size=c.size)
        d /= np.linalg.norm(d)
        t = 1e-4
        ratio = problem.loss_at(c + t * d) / (t * t * (d @ H @ d) / problem.K)
        assert ratio == pytest.approx(1.0, abs=1e-3)


def test_lm_fit_is_monotone_reproducible_and_beats_its_start(images, tmp_path):
    init = MTPotential.from_level(LEVEL, ["Cu", "Au"], 2.0, 4.5, 6)
    logs, hist = [], []
    a = fit(images, init, seed=3, max_iter=6, radial_optimizer="lm", log=logs.append,
            history=hist)
    b = fit(images, init, seed=3, max_iter=6, radial_optimizer="lm", log=None)
    a.save(tmp_path / "a.mtp")
    b.save(tmp_path / "b.mtp")
    assert (tmp_path / "a.mtp").read_bytes() == (tmp_path / "b.mtp").read_bytes()
    losses = [h["loss"] for h in hist]
    assert len(losses) >= 2 and all(np.diff(losses) < 0)
    start = fit(images, init, seed=3, optimize_radial=False, log=None)
    problem = _problem(start, images)
    assert losses[-1] < problem.loss_at(start.radial_coeffs.ravel().copy())
    assert any(line.startswith("Levenberg-Marquardt stopped after") for line in logs)


def test_lm_with_fixed_species_coeffs(images):
    init = MTPotential.from_level(LEVEL, ["Cu", "Au"], 2.0, 4.5, 6)
    pot = fit(images, init, max_iter=2, radial_optimizer="lm",
              isolated_energies={"Cu": -0.5, "Au": 0.25}, log=None)
    np.testing.assert_array_equal(pot.species_coeffs, [-0.5, 0.25])


def test_lm_leaves_radial_functions_of_an_absent_species_alone(images):
    """Ag is not in the data: its radial coefficients change no prediction (zero rows and
    columns of H); LM must still lower the loss and leave them as they were."""
    init = MTPotential.from_level(LEVEL, ["Cu", "Au", "Ag"], 2.0, 4.5, 6)
    start = fit(images, init, seed=1, optimize_radial=False, log=None)
    hist = []
    pot = fit(images, start, max_iter=3, radial_optimizer="lm", warm_start=True, log=None,
              history=hist)
    assert len(hist) == 3 and all(np.diff([h["loss"] for h in hist]) < 0)
    np.testing.assert_array_equal(pot.radial_coeffs[2], start.radial_coeffs[2])
    np.testing.assert_array_equal(pot.radial_coeffs[:, 2], start.radial_coeffs[:, 2])
    assert not np.array_equal(pot.radial_coeffs[:2, :2], start.radial_coeffs[:2, :2])


def test_unknown_radial_optimizer_is_named(images):
    init = MTPotential.from_level(LEVEL, ["Cu", "Au"], 2.0, 4.5, 6)
    with pytest.raises(TrainingDataError, match="radial_optimizer.*'newton'"):
        fit(images, init, radial_optimizer="newton", log=None)
