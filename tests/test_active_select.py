"""select_add: greedy maxvol selection, order independence, near-duplicates, cap."""
import numpy as np
import pytest

from mtplib.active import ActiveSet, select_add
from mtplib.active.testing import emt_cells, linear_fit, tiny_potential


@pytest.fixture(scope="module")
def setup():
    train = emt_cells(30, seed=1)
    pot = linear_fit(tiny_potential(8), train)
    pool = emt_cells(12, seed=5, rattle=0.25, strain=0.08)
    return pot, train, pool


@pytest.mark.parametrize("mode", ["configuration", "neighborhood"])
def test_selection_increases_det_and_is_order_independent(setup, mode):
    pot, train, pool = setup
    aset = ActiveSet.from_training(pot, train, mode=mode)
    sel = select_add(aset, pool)
    assert len(sel.selected) >= 1
    assert sel.state.log_det > np.linalg.slogdet(aset.A)[1]
    # every selected candidate extrapolated before selection
    assert all(sel.gamma[k] > 1.001 for k in sel.selected)
    # after selection the whole pool interpolates against the new A
    from mtplib.active.grade import jacobian_rows
    rows, _ = jacobian_rows(pot, pool, mode)
    assert np.abs(rows @ sel.state.Ainv).max() <= 1.001 + 1e-9
    for seed in range(3):
        perm = np.random.default_rng(seed).permutation(len(pool))
        again = select_add(aset, [pool[k] for k in perm])
        assert sorted(perm[k] for k in again.selected) == sorted(sel.selected)


def test_near_duplicates_never_both_selected(setup):
    pot, train, pool = setup
    aset = ActiveSet.from_training(pot, train)
    far = pool[0]
    twin = far.copy()
    twin.positions += 1e-4 * np.random.default_rng(0).normal(size=twin.positions.shape)
    g_far, g_twin = aset.grade(far.copy()), aset.grade(twin.copy())
    assert g_far > 1.5 and g_twin > 1.5            # both extrapolate on their own
    sel = select_add(aset, [far, twin, far.copy()])
    assert len(sel.selected) == 1
    # re-graded against the updated A^-1 the other copy interpolates
    from mtplib.active.grade import jacobian_rows
    rows, _ = jacobian_rows(pot, [far, twin], "configuration")
    assert np.abs(rows @ sel.state.Ainv).max(axis=1).max() <= 1.001


def test_cap_on_number(setup):
    pot, train, pool = setup
    aset = ActiveSet.from_training(pot, train)
    full = select_add(aset, pool)
    assert len(full.selected) >= 2
    capped = select_add(aset, pool, max_count=1)
    assert len(capped.selected) == 1
    assert select_add(aset, pool, max_count=0).selected == []
    # the first greedy choice is the candidate of largest gamma
    assert capped.selected[0] == int(np.argmax(full.gamma))
