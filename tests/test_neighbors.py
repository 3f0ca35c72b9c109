"""Neighbour lists against ASE's primitive_neighbor_list (the reference), for every backend."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import primitive_neighbor_list

from mtplib.neighbors import neighbor_csr, neighbor_list, neighbor_list_atoms

BACKENDS = ["numba", "vesin", "ase"]


def pair_set(i, j, D):
    """Pairs as a set of (i, j, D rounded to 1e-6 A); +0.0 folds -0.0 into 0.0."""
    return set(zip(i.tolist(), j.tolist(), map(tuple, (np.round(D, 6) + 0.0).tolist())))


def reference_pairs(positions, cell, pbc, cutoff):
    pbc = np.broadcast_to(pbc, 3)
    return pair_set(*primitive_neighbor_list("ijD", pbc, cell, positions, cutoff, self_interaction=False))


def fcc_cu_32():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    return atoms


def small_triclinic(n_atoms, seed):
    """A random skewed cell of 2-3 atoms, each edge 2-3 A."""
    rng = np.random.default_rng(seed)
    cell = np.diag(rng.uniform(2.0, 3.0, 3)) + np.triu(rng.uniform(-0.9, 0.9, (3, 3)), 1).T
    positions = rng.random((n_atoms, 3)) @ cell
    return positions, cell


def cu_slab():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    atoms.cell[2] = [0.0, 0.0, 20.0]  # vacuum along z
    atoms.pbc = (True, True, False)
    atoms.rattle(0.05, seed=2)
    return atoms


def random_gas(n_atoms, box, seed):
    """Uniform random atoms in a skewed box: several bins along every direction."""
    rng = np.random.default_rng(seed)
    cell = np.diag([box] * 3) + np.triu(rng.uniform(-0.3, 0.3, (3, 3)) * box, 1).T
    return rng.random((n_atoms, 3)) @ cell, cell


CASES = {
    "fcc Cu 32 atoms, 5 A": lambda: (*_arrays(fcc_cu_32()), 5.0),
    "triclinic 2 atoms, 6 A": lambda: (*small_triclinic(2, seed=3), True, 6.0),
    "triclinic 3 atoms, 6 A": lambda: (*small_triclinic(3, seed=4), True, 6.0),
    "slab pbc=(T,T,F), 5 A": lambda: (*_arrays(cu_slab()), 5.0),
    "wire pbc=(F,F,T), 4 A": lambda: (*small_triclinic(3, seed=5), (False, False, True), 4.0),
    "molecule, zero cell, 3 A": lambda: (molecule("C6H6").positions, np.zeros((3, 3)), False, 3.0),
    "1-atom fcc cell, 6 A": lambda: (*_arrays(bulk("Cu", "fcc", a=3.61)), 6.0),
    "many bins, periodic": lambda: (*random_gas(150, 12.0, seed=8), True, 2.5),
    "many bins, slab": lambda: (*random_gas(150, 12.0, seed=9), (True, False, True), 2.5),
    "many bins, molecule": lambda: (*random_gas(150, 12.0, seed=10), False, 2.5),
}


def _arrays(atoms):
    return atoms.positions, atoms.cell.array, atoms.pbc


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_pairs_match_ase(case, backend):
    positions, cell, pbc, cutoff = CASES[case]()
    i, j, D = neighbor_list(positions, cell, pbc, cutoff, backend=backend)
    assert i.dtype == j.dtype == np.int64 and D.dtype == np.float64 and D.shape == (len(i), 3)
    expected = reference_pairs(positions, cell, pbc, cutoff)
    assert len(expected) > 0
    assert len(i) == len(expected)  # no duplicates
    assert pair_set(i, j, D) == expected
    assert np.all(np.diff(i) >= 0), "pairs not sorted by centre atom"
    assert np.all(np.linalg.norm(D, axis=1) < cutoff)


def test_own_images_are_neighbours():
    # 1-atom fcc cell, cutoff 6 A > the 2.55 A nearest-neighbour distance: every pair is an image
    atoms = bulk("Cu", "fcc", a=3.61)
    i, j, D = neighbor_list_atoms(atoms, 6.0)
    assert np.all(i == 0) and np.all(j == 0)
    shells = np.unique(np.round(np.linalg.norm(D, axis=1), 4))
    np.testing.assert_allclose(shells[0], 3.61 / np.sqrt(2), atol=1e-4)
    assert len(i) == 12 + 6 + 24 + 12 + 24  # fcc shells at a*sqrt(n/2) < 6 A, n = 1..5


def test_zero_cell_vector_along_free_direction():
    # ASE drops pairs when a non-periodic cell row is zero; vesin and numba must agree
    positions, cell = small_triclinic(3, seed=6)
    cell[2] = 0.0
    pbc = (True, True, False)
    pairs = {b: pair_set(*neighbor_list(positions, cell, pbc, 5.0, backend=b)) for b in ("numba", "vesin")}
    assert pairs["numba"] == pairs["vesin"]
    cell[2] = [0.0, 0.0, 30.0]  # any free-direction vector gives the same pairs
    assert pairs["numba"] == reference_pairs(positions, cell, pbc, 5.0)


def test_atoms_outside_the_cell_are_wrapped_consistently():
    positions, cell = small_triclinic(3, seed=7)
    shifted = positions + np.array([3, -2, 5]) @ cell + [0.0, 0.0, 1e-12]
    assert pair_set(*neighbor_list(shifted, cell, True, 4.0)) == reference_pairs(shifted, cell, True, 4.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_csr_offsets(backend):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)  # perfect crystal
    i, j, D = neighbor_list_atoms(atoms, 5.0, backend=backend)
    offsets, j_csr, D_csr = neighbor_csr(atoms.positions, atoms.cell.array, atoms.pbc, 5.0, backend=backend)
    assert offsets.dtype == np.int64 and offsets.shape == (len(atoms) + 1,)
    assert offsets[0] == 0 and offsets[-1] == len(j)
    np.testing.assert_array_equal(np.repeat(np.arange(len(atoms)), np.diff(offsets)), i)
    np.testing.assert_array_equal(j_csr, j)
    np.testing.assert_array_equal(D_csr, D)
    assert np.all(np.diff(offsets) == np.diff(offsets)[0])  # fcc: every atom has the same count


def test_csr_offsets_with_isolated_atoms():
    positions = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [11.0, 0.0, 0.0], [30.0, 0.0, 0.0]])
    offsets, j, D = neighbor_csr(positions, np.zeros((3, 3)), False, 2.0)
    np.testing.assert_array_equal(offsets, [0, 0, 1, 2, 2])
    np.testing.assert_array_equal(j, [2, 1])
    np.testing.assert_allclose(D, [[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])


def test_empty_and_zero_cutoff():
    i, j, D = neighbor_list(np.zeros((0, 3)), np.eye(3), True, 5.0)
    assert len(i) == len(j) == 0 and D.shape == (0, 3)
    offsets, j, D = neighbor_csr(fcc_cu_32().positions, np.eye(3) * 7.22, True, 0.0)
    assert np.all(offsets == 0) and D.shape == (0, 3)


def test_nan_position_names_the_atom():
    atoms = fcc_cu_32()
    atoms.positions[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf at atom index 7"):
        neighbor_list_atoms(atoms, 5.0)


def test_inf_position_names_the_atom():
    positions = np.zeros((3, 3))
    positions[2, 0] = np.inf
    with pytest.raises(ValueError, match=r"NaN or inf at atom index 2"):
        neighbor_list(positions, np.zeros((3, 3)), False, 5.0)


@pytest.mark.parametrize(
    "cell, pbc",
    [
        (np.zeros((3, 3)), True),
        (np.diag([3.0, 3.0, 0.0]), True),
        ([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [3.0, 3.0 + 1e-12, 0.0]], True),  # coplanar
        ([[3.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 0.0, 0.0]], (True, True, False)),  # collinear
    ],
)
def test_degenerate_periodic_cell_says_zero_volume(cell, pbc):
    with pytest.raises(ValueError, match=r"periodic cell has zero or near-zero volume"):
        neighbor_list(np.zeros((2, 3)), cell, pbc, 5.0)


def test_negative_cutoff():
    with pytest.raises(ValueError, match=r"cutoff must be a finite non-negative distance, got -1.0"):
        neighbor_list(np.zeros((2, 3)), np.eye(3), False, -1.0)


def test_zero_cell_is_fine_without_pbc():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    i, j, D = neighbor_list_atoms(atoms, 1.0)
    np.testing.assert_array_equal(i, [0, 1])
    np.testing.assert_allclose(D[:, 2], [0.74, -0.74])


def test_cutoff_far_beyond_a_tiny_cell_is_refused():
    # 0.05 A cell, 10 A cutoff: 401^3 images per atom
    with pytest.raises(ValueError, match=r"cutoff 10.0 is too large for this cell"):
        neighbor_list(np.zeros((1, 3)), np.eye(3) * 0.05, True, 10.0)


def test_unknown_backend():
    with pytest.raises(ValueError, match=r"unknown neighbour-list backend 'gpu'"):
        neighbor_list(np.zeros((1, 3)), np.eye(3), True, 1.0, backend="gpu")


def test_parallel_csr_search_equals_serial():
    """The parallel search (large systems: blocks of atoms write into their own buffers, then
    the pairs are copied into place) gives the serial pairs in the serial order, also for a
    dense cluster (whose blocks overflow their buffers) and for slabs."""
    from ase.build import bulk, fcc111
    from mtplib.neighbors import _MAX_IMAGES, _cell_list_csr, _working_box, neighbor_csr
    bulk_cell = bulk("Cu", "fcc", a=3.61).repeat((6, 6, 6))
    bulk_cell.rattle(0.1, seed=1)
    cluster = bulk_cell.copy()
    cluster.positions[:100] = cluster.positions[0] + np.random.default_rng(0).normal(
        scale=0.3, size=(100, 3))
    slab = fcc111("Cu", (6, 6, 4), vacuum=5.0)
    for atoms in (bulk_cell, cluster, slab):
        offsets, j, D = neighbor_csr(atoms.positions, atoms.cell.array, atoms.pbc, 5.0)
        box, origin = _working_box(atoms.positions, atoms.cell.array, atoms.pbc, 5.0)
        o, jj, DD, shortest, _ = _cell_list_csr(atoms.positions, box, origin, atoms.pbc, 5.0,
                                                _MAX_IMAGES, True)
        assert np.array_equal(o, offsets) and np.array_equal(jj, j) and np.array_equal(DD, D)
        assert shortest == pytest.approx(np.linalg.norm(D, axis=1).min(), abs=0)


def test_batch_search_equals_one_by_one():
    """The batch search (structures on threads, each into its own slice of a buffer sized from
    the mean density, then joined) gives each structure's `neighbor_csr` pairs in its order,
    in the joined numbering; also for a dense cluster, which overflows its slice and is
    searched again."""
    from mtplib.neighbors import _batch_capacity, neighbor_csr_batch
    bulk_cell = bulk("Cu", "fcc", a=3.61).repeat((6, 6, 6))
    bulk_cell.rattle(0.1, seed=1)
    cluster = bulk_cell.copy()
    cluster.positions[:100] = cluster.positions[0] + np.random.default_rng(0).normal(
        scale=0.3, size=(100, 3))
    small = bulk("Cu", "fcc", a=3.61, cubic=True)
    small.rattle(0.1, seed=2)
    images = [small, cluster, small, bulk_cell]
    atom_start, offsets, j, D, shortest = neighbor_csr_batch(
        [(a.positions, a.cell.array, a.pbc) for a in images], 5.0)
    capacity = np.diff(_batch_capacity(atom_start, np.array([a.cell.array for a in images]), 5.0))
    for c, atoms in enumerate(images):
        o, jj, DD = neighbor_csr(atoms.positions, atoms.cell.array, atoms.pbc, 5.0)
        a0, a1 = atom_start[c], atom_start[c + 1]
        assert np.array_equal(offsets[a0:a1 + 1] - offsets[a0], o)
        p0, p1 = offsets[a0], offsets[a1]
        assert np.array_equal(j[p0:p1] - a0, jj) and np.array_equal(D[p0:p1], DD)
        assert shortest[c] == np.linalg.norm(DD, axis=1).min()
        assert (len(jj) > capacity[c]) == (c == 1)         # only the cluster overflows
