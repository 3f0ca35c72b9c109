"""Linear k-fold cross-validation from one design pass == a `fit` per fold and grid point."""
import numpy as np
import pytest

from mtplib.training import TrainingDataError, fit
from mtplib.training.crossval import kfold_parts, linear_cross_validation

from test_training import random_pot, tiny_set  # noqa: F401  (fixture and data)


@pytest.fixture(scope="module")
def images():
    return tiny_set(n=9, seed=3)


def _fold_maes(images, pot, weights, ridge, parts, k):
    train = [images[i] for j, p in enumerate(parts) if j != k for i in p]
    fitted = fit(train, pot, weights=weights, optimize_radial=False, warm_start=True,
                 ridge=ridge, log=None)
    held = [images[i] for i in parts[k]]
    res = fitted.evaluate_many(held)
    de = [abs(r["energy"] - a.get_potential_energy()) / len(a) for r, a in zip(res, held)]
    df = np.concatenate([np.abs(r["forces"] - a.get_forces()).ravel() for r, a in zip(res, held)])
    return 1000.0 * np.mean(de), df.mean()


def test_kfold_parts_cover_disjointly_and_are_seeded():
    parts = kfold_parts(11, 3, split_seed=4)
    assert sorted(np.concatenate(parts).tolist()) == list(range(11))
    assert [len(p) for p in parts] == [4, 4, 3]
    assert all(np.array_equal(a, b) for a, b in zip(parts, kfold_parts(11, 3, split_seed=4)))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, kfold_parts(11, 3, split_seed=5)))
    with pytest.raises(ValueError, match="folds must be in"):
        kfold_parts(3, 4)


def test_linear_cv_matches_a_fit_per_fold(images, random_pot):  # noqa: F811
    grid = [(1.0, 0.01, 0.001), (10.0, 0.01, 0.0), (1.0, 0.1, 0.01)]
    ridges = (1e-10, 1e-3)
    scores = linear_cross_validation(images, random_pot, grid, ridges, folds=3, split_seed=1)
    assert set(scores) == {(w, r) for w in grid for r in ridges}
    parts = kfold_parts(len(images), 3, split_seed=1)
    for (w, r), (e_cv, f_cv) in scores.items():
        ref = np.mean([_fold_maes(images, random_pot, w, r, parts, k) for k in range(3)], axis=0)
        np.testing.assert_allclose([e_cv, f_cv], ref, rtol=1e-7)
    # the hyperparameters matter: the grid points do not all score alike
    assert len({round(v[1], 9) for v in scores.values()}) > 1


def test_linear_cv_bad_input_names_the_configuration(images, random_pot):  # noqa: F811
    bare = [a.copy() for a in images]              # no calculator: no labels
    with pytest.raises(TrainingDataError, match=r"train\[0\]: no energy"):
        linear_cross_validation(bare, random_pot, [(1.0, 0.01, 0.001)], folds=3)
