"""The basis generator: MLIP-2's basis sizes, and compiled contractions equal to einsum."""
import numpy as np
import pytest
from conftest import random_potential
from reference_mtp import graph_value

from mtplib.basis import MLIP2_BASIS_SIZES, basis_for_level, contraction_graphs


@pytest.mark.parametrize("level", sorted(MLIP2_BASIS_SIZES))
def test_basis_sizes_match_mlip2(level):
    n_basis, n_radial = MLIP2_BASIS_SIZES[level]
    graphs = contraction_graphs(level)
    assert len(graphs) == n_basis
    assert len({mu for g in graphs for mu in g.mus}) == n_radial
    assert all(g.level <= level and len(g.mus) <= 4 for g in graphs)


def test_level_10_leaves_out_five_factors():
    # M00^5 has level 10 but five factors: 16 functions, not 17
    assert len(contraction_graphs(10)) == 16
    assert all(len(g.mus) <= 4 for g in contraction_graphs(10))


def test_bad_level_is_refused():
    with pytest.raises(ValueError, match="even number from 2 to 28"):
        basis_for_level(15)


@pytest.mark.parametrize("level", [8, 12, 16])
def test_compiled_contractions_equal_einsum(level):
    pot = random_potential(level, ["Cu", "Au"], seed=level)
    rng = np.random.default_rng(1)
    d = rng.normal(size=(9, 3))
    d *= rng.uniform(1.8, 4.0, size=9)[:, None] / np.linalg.norm(d, axis=1)[:, None]
    types_n = rng.integers(0, 2, size=9)
    # moments by alpha_index_basic / alpha_index_times, as the kernels use them
    from reference_mtp import chebyshev
    r = np.linalg.norm(d, axis=1)
    q, _ = chebyshev(r, pot)
    f = np.einsum("mub,mb->mu", pot.radial_coeffs[1, types_n], q)
    moments = np.zeros(pot.alpha_moments_count)
    for k, (mu, a, b, c) in enumerate(pot.alpha_index_basic):
        u = d / r[:, None]
        moments[k] = np.sum(f[:, mu] * u[:, 0] ** a * u[:, 1] ** b * u[:, 2] ** c)
    for i1, i2, mult, k in pot.alpha_index_times:
        moments[k] += mult * moments[i1] * moments[i2]
    compiled = moments[pot.alpha_moment_mapping]
    direct = np.array([graph_value(pot, g, d, 1, types_n) for g in contraction_graphs(level)])
    np.testing.assert_allclose(compiled, direct, rtol=1e-10, atol=1e-12 * np.abs(direct).max())
