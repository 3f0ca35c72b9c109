"""Maxvol on small matrices: brute force, monotone volume, Sherman-Morrison, regularised start."""
import itertools
import warnings

import numpy as np
import pytest

from mtplib.active.maxvol import VIRTUAL, UnderdeterminedWarning, maxvol


def brute_force(B):
    m = B.shape[1]
    return max(itertools.combinations(range(len(B)), m),
               key=lambda rows: abs(np.linalg.det(B[list(rows)])))


def test_matches_brute_force_one_column():
    for seed in range(40):
        rng = np.random.default_rng(seed)
        B = rng.normal(size=(int(rng.integers(2, 10)), 1))
        state = maxvol(B)
        assert sorted(state.labels.tolist()) == list(brute_force(B)), f"seed {seed}"


@pytest.mark.parametrize("m", [2, 3, 4])
def test_close_to_brute_force(m):
    """Maxvol finds a dominant (locally maximal) submatrix: on small random matrices it is
    the brute-force maximum in >= 90 % of cases, and never far from it (bound: m^(m/2),
    Goreinov et al. 2010)."""
    matches, total = 0, 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        B = rng.normal(size=(int(rng.integers(m + 2, 10)), m))
        state = maxvol(B)
        best = brute_force(B)
        ratio = abs(np.linalg.det(state.A)) / abs(np.linalg.det(B[list(best)]))
        assert ratio > 0.5, f"seed {seed}: |det| ratio {ratio}"
        # locally maximal: no single swap increases |det|
        for slot, row in itertools.product(range(m), range(len(B))):
            A = state.A.copy()
            A[slot] = B[row]
            assert abs(np.linalg.det(A)) <= abs(np.linalg.det(state.A)) * (1 + 1e-6)
        matches += sorted(state.labels.tolist()) == list(best)
        total += 1
    assert matches / total >= 0.9, f"{matches}/{total} match brute force"


def test_det_never_decreases_over_swaps():
    rng = np.random.default_rng(3)
    B = rng.normal(size=(60, 6)) * np.logspace(-3, 3, 6)     # badly scaled columns
    B[:6] *= 1e-3                                            # a poor first guess
    state = maxvol(B, tol=1e-9)
    # replay the swaps from the start, checking |det| step by step against the factors
    start = maxvol(B, tol=1e9)          # no swaps: the start only
    assert start.swaps == []
    A = start.A.copy()
    logdet = np.linalg.slogdet(A)[1]
    for slot, label, factor in state.swaps:
        A[slot] = B[label]
        new = np.linalg.slogdet(A)[1]
        assert factor > 1.0
        assert new == pytest.approx(logdet + np.log(factor), abs=1e-8)
        assert new > logdet
        logdet = new
    np.testing.assert_allclose(A, state.A, rtol=1e-12)
    assert state.log_det == pytest.approx(np.linalg.slogdet(state.A)[1], abs=1e-8)
    # Sherman-Morrison kept A^-1 accurate
    np.testing.assert_allclose(state.Ainv @ state.A, np.eye(6), atol=1e-9)
    assert np.abs(B @ state.Ainv).max() <= 1 + 1e-9


def test_rank_deficient_keeps_virtual_rows_and_grades_span():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, 5))
    B = rng.normal(size=(40, 3)) @ basis                     # rank 3 in 5 columns
    with warnings.catch_warnings():
        warnings.simplefilter("error")                        # more rows than columns: no warning
        state = maxvol(B)
    assert (state.labels == VIRTUAL).sum() == 2
    assert np.abs(B @ state.Ainv).max() <= 1 + 1e-6          # rows in the span interpolate
    outside = rng.normal(size=5)
    assert np.abs(outside @ state.Ainv).max() > 1e3          # a new direction extrapolates


def test_underdetermined_warns_and_regularises():
    rng = np.random.default_rng(1)
    B = rng.normal(size=(3, 8))
    with pytest.warns(UnderdeterminedWarning, match=r"tiny: 3 rows for 8 parameters: the active "
                                                    r"set is underdetermined.*regularised start"):
        state = maxvol(B, where="tiny")
    assert sorted(state.labels[state.labels != VIRTUAL].tolist()) == [0, 1, 2]
    assert (state.labels == VIRTUAL).sum() == 5
    np.testing.assert_allclose(np.abs(B @ state.Ainv).max(axis=1), 1.0, atol=1e-8)


def mlip2_maxvol(B, eps=1e-5, swap_threshold=1 + 1e-7):
    """MLIP-2's rule (maxvol.cpp, MaxvolSelection::Select) in plain numpy: A = eps I; while
    max |P A^-1| > swap_threshold, swap the first maximal entry's candidate row P_i into
    slot j, and the row it replaces becomes candidate i. C from a fresh solve every step."""
    n, m = B.shape
    A = eps * np.eye(m)
    members = np.full(m, VIRTUAL)
    P, owners = B.copy(), np.arange(n)
    while True:
        C = np.linalg.solve(A.T, P.T).T
        i, j = np.unravel_index(np.argmax(np.abs(C)), C.shape)
        if abs(C[i, j]) <= swap_threshold:
            return A, members
        A[j], P[i] = P[i].copy(), A[j].copy()
        members[j], owners[i] = owners[i], members[j]


def rank_deficient_case(seed, smallest, n=40, m=8):
    """Singular values falling through eps = 1e-5 (as the MTP's Jacobian rows do), in
    columns of scales 0.1..10."""
    rng = np.random.default_rng(seed)
    s = np.array([1, 0.3, 0.1, 1e-2, 1e-3, 3e-5, 1e-5, smallest])
    Q, _ = np.linalg.qr(rng.normal(size=(m, m)))
    scales = np.logspace(-1, 1, m)[rng.permutation(m)]
    B = (rng.normal(size=(n, m)) * s) @ Q * scales
    B[7] = B[3]                                          # a duplicate: ties go to the first
    data = (rng.normal(size=(30, m)) * s * 1.5) @ Q * scales
    return B, data


# seeds 27 and 34 (smallest 3e-6): a row swapped out of A returns later
@pytest.mark.parametrize("seed, smallest", [(0, 0.0), (1, 0.0), (2, 3e-6), (5, 3e-6), (27, 3e-6),
                                            (34, 3e-6)])
def test_rank_deficient_matches_mlip2_rule(seed, smallest):
    B, data = rank_deficient_case(seed, smallest)
    A_ref, members_ref = mlip2_maxvol(B)
    state = maxvol(B)
    assert (members_ref == VIRTUAL).sum() >= 1           # the case keeps virtual rows
    np.testing.assert_array_equal(state.labels, members_ref)
    np.testing.assert_allclose(state.A, A_ref, rtol=0, atol=0)
    grade_ref = np.abs(np.linalg.solve(A_ref.T, data.T).T).max(axis=1)
    np.testing.assert_allclose(np.abs(data @ state.Ainv).max(axis=1), grade_ref, rtol=1e-9)
    assert grade_ref.max() > 1.5 and grade_ref.min() < 1.0


def test_checked_swaps_never_leave_A_singular():
    """select_add's swaps (run_swaps(checked=True)) against an active set with a virtual row
    eps e_k beside real rows whose columns span 12 decades (raw MTP columns): a candidate in
    the span of the real rows may get |b A^-1| > 1 on the virtual slot by round-off alone;
    the unchecked rank-1 swap then leaves A singular (np.linalg.inv fails), the checked one
    refuses it and A stays as it was."""
    from mtplib.active.maxvol import MaxvolState, equilibrated_condition, run_swaps
    rng = np.random.default_rng(0)
    raised = proposed = 0
    for _ in range(300):
        m = 6
        R = rng.normal(size=(m - 1, m)) * 10 ** rng.uniform(0, 12, size=m)
        A = np.vstack([R, 1e-5 * np.eye(m)[m - 1]])
        Ainv = np.linalg.inv(A)
        b = rng.uniform(-1, 1, size=m - 1) @ R          # real-slot coefficients <= 1
        if np.abs(b @ Ainv).max() <= 1.001:
            continue
        proposed += 1
        labels = np.array([0, 1, 2, 3, 4, VIRTUAL])
        plain = MaxvolState(A=A.copy(), Ainv=Ainv.copy(), labels=labels.copy())
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run_swaps(plain, b[None], np.array([7]), tol=1e-3)
        except np.linalg.LinAlgError:
            raised += 1
        checked = MaxvolState(A=A.copy(), Ainv=Ainv.copy(), labels=labels.copy())
        assert run_swaps(checked, b[None], np.array([7]), tol=1e-3, checked=True) == 0
        np.testing.assert_array_equal(checked.A, A)
        assert (checked.labels == labels).all()
        assert equilibrated_condition(checked.A, checked.Ainv) < 1e6
    assert proposed >= 20 and raised >= 5, (proposed, raised)


def test_maxvol_of_a_degenerate_training_set_starts_again_checked():
    """A rank-6 B of 84 rows and 39 columns spanning 16 decades (a tiny training set in raw
    MTP columns, as the cut-down HfO2 example's final fit): the plain rank-1 swaps drive A to
    singular (np.linalg.inv fails); maxvol then starts again with every swap checked, and
    returns a nonsingular A of real rows of B and virtual rows eps e_k."""
    from mtplib.active.maxvol import MaxvolState, run_swaps
    plain_failed = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        B = rng.normal(size=(84, 6)) @ rng.normal(size=(6, 39))
        B *= 10.0 ** rng.uniform(-3, 13, size=39)
        plain = MaxvolState(A=1e-5 * np.eye(39), Ainv=np.eye(39) / 1e-5,
                            labels=np.full(39, VIRTUAL), log_det=39 * np.log(1e-5))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                run_swaps(plain, B, np.arange(84), exchange=True)
            except np.linalg.LinAlgError:
                plain_failed += 1
            state = maxvol(B)
        sign, _ = np.linalg.slogdet(state.A)
        assert sign != 0 and np.isfinite(state.Ainv).all(), f"seed {seed}"
        real = state.labels != VIRTUAL
        np.testing.assert_array_equal(state.A[real], B[state.labels[real]])
        assert all(np.count_nonzero(row) == 1 for row in state.A[~real])
        assert real.any()
    assert plain_failed >= 2, plain_failed


def test_checked_swaps_take_the_good_rows():
    """The check refuses nothing that grows |det A|: on random rows it selects what the
    unchecked greedy selection selects, with the exact log |det A|."""
    from mtplib.active.maxvol import run_swaps
    rng = np.random.default_rng(4)
    B = rng.normal(size=(12, 5))
    base = maxvol(B[:6], warn=False)
    cands = rng.normal(size=(20, 5)) * 2.0
    plain, checked = base, maxvol(B[:6], warn=False)
    run_swaps(plain, cands, np.arange(20), tol=1e-3)
    run_swaps(checked, cands, np.arange(20), tol=1e-3, checked=True)
    assert sorted(plain.labels.tolist()) == sorted(checked.labels.tolist())
    assert checked.log_det == pytest.approx(np.linalg.slogdet(checked.A)[1], rel=1e-12)
