"""Detection quality of the extrapolation grade on a fixed potential (issue 18, H4, the cheap
form): across configurations further and further from the training data, gamma ranks the
configurations by their force error, and it flags the badly predicted ones."""
import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr

from mtplib.active import ActiveSet
from mtplib.active.testing import emt_cells, linear_fit, tiny_potential

# (rattle Å, strain) of the test conditions: from the training data's (0.05, 0.01) outwards
CONDITIONS = [(0.03, 0.01), (0.08, 0.02), (0.12, 0.03), (0.18, 0.04), (0.25, 0.05)]


def roc_auc(score, positive):
    """Probability that a positive scores above a negative (ties count half)."""
    pos, neg = score[positive], score[~positive]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return greater / (len(pos) * len(neg))


@pytest.fixture(scope="module")
def graded():
    train = emt_cells(12, seed=0, rattle=0.05, strain=0.01)
    pot = linear_fit(tiny_potential(8), train)
    tests = [a for k, (r, s) in enumerate(CONDITIONS)
             for a in emt_cells(10, seed=100 + k, rattle=r, strain=s)]
    with warnings.catch_warnings():          # the far conditions come closer than min_dist
        warnings.simplefilter("ignore")
        aset = ActiveSet.from_training(pot, train, mode="configuration")
        gamma = np.array(aset.grade_many(tests))
        results = [pot.evaluate(a) for a in tests]
    force_rmse = np.array([np.sqrt(np.mean((r["forces"] - a.get_forces()) ** 2))
                           for r, a in zip(results, tests)])
    return gamma, force_rmse


def test_gamma_ranks_configurations_by_force_error(graded):
    gamma, force_rmse = graded
    rho = spearmanr(gamma, force_rmse)[0]
    assert rho >= 0.6, f"Spearman rho(gamma, force RMSE) = {rho:.3f}"


def test_gamma_flags_the_badly_predicted_configurations(graded):
    gamma, force_rmse = graded
    bad = force_rmse > 2 * np.median(force_rmse)
    assert 0 < bad.sum() < len(bad)
    auc = roc_auc(gamma, bad)
    assert auc >= 0.8, f"ROC AUC of gamma for force RMSE > 2x median: {auc:.3f}"
    # and gamma grows from the training conditions outwards
    per_condition = gamma.reshape(len(CONDITIONS), -1).mean(axis=1)
    assert np.all(np.diff(per_condition) > 0), per_condition
