"""`mtplib.threads`: serial nogil kernels on Python threads give the same numbers bit for bit
on one thread and on two (each block or structure writes its own slice; reductions run
afterwards in a fixed order)."""
import threading

import numba
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from conftest import random_potential, triclinic_cell

from mtplib import neighbors
from mtplib.kernels import mtp as mtp_kernels
from mtplib.kernels import training as training_kernels
from mtplib.kernels.training import batch_design, batch_pair_tangents, batch_radial_gradient
from mtplib.neighbors import neighbor_csr_batch, neighbor_csr_shortest
from mtplib.threads import run_chunks
from mtplib.training import prepare
from mtplib.training.loss import _k, pack

SPECIES = ["Ag", "Pd", "Cu"]
TWO = min(2, numba.config.NUMBA_NUM_THREADS)


def _labelled(atoms, seed):
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.calc = SinglePointCalculator(atoms, energy=rng.normal(),
                                       forces=rng.normal(size=(len(atoms), 3)),
                                       stress=rng.normal(size=6))
    return atoms


def _everything(pot, images, big):
    """Every threaded path: evaluate (blocks of a large cell, with parameter rows), the
    batch of evaluate_many, the fit's design rows and radial gradient, both neighbour
    searches."""
    out = {}
    res = pot.evaluate(big)
    out.update(big_forces=res["forces"], big_energies=res["energies"], big_stress=res["stress"])
    out["big_rows"] = pot.evaluate_pass(big, want_params=True, per_atom=True)[1]
    for c, res in enumerate(pot.evaluate_many(images)):
        out.update({f"many{c}_forces": res["forces"], f"many{c}_stress": res["stress"],
                    f"many{c}_energy": np.array(res["energy"])})
    (batch,) = pack(prepare(images, pot), pot.species_count + pot.alpha_scalar_moments)
    args = (batch.cfg_atoms, batch.types, batch.offsets, batch.nbr, batch.vec, *_k(pot))
    n_moments = pot.kernel_arrays()["n_moments"]
    out["design"] = batch_design(batch.cfg_atoms, batch.rows(True)[0], *args[1:], n_moments, True)
    rng = np.random.default_rng(0)
    tangent = batch_pair_tangents(batch.cfg_atoms, batch.offsets, batch.nbr, batch.vec,
                                  rng.normal(size=(len(batch.types), 3)),
                                  rng.normal(size=(len(images), 3, 3)))
    out["radial_gradient"] = batch_radial_gradient(*args, pot.moment_coeffs, n_moments,
                                                   rng.normal(size=len(images)), tangent)
    structures = [(a.positions, a.cell.array, a.pbc) for a in images]
    for k, arr in enumerate(neighbor_csr_batch(structures, pot.max_dist)):
        out[f"batch_search{k}"] = arr
    for k, arr in enumerate(neighbor_csr_shortest(big.positions, big.cell.array, big.pbc,
                                                  pot.max_dist, parallel=True)):
        out[f"blocked_search{k}"] = np.asarray(arr)
    return out


@pytest.mark.skipif(TWO < 2, reason="needs NUMBA_NUM_THREADS >= 2")
def test_one_and_two_threads_agree_bit_for_bit():
    pot = random_potential(8, SPECIES, seed=3)
    big = triclinic_cell(SPECIES, n_atoms=6, seed=4).repeat((5, 5, 4))       # 600 atoms
    big.rattle(0.02, seed=2)
    images = [_labelled(triclinic_cell(SPECIES, n_atoms=n, seed=n), n)
              for n in (3, 5, 8, 6, 7, 4, 9, 5, 6, 7)] + [_labelled(big, 0)]
    results = []
    for threads in (1, TWO):
        numba.set_num_threads(threads)
        try:
            results.append(_everything(pot, images, big))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    one, two = results
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_run_chunks_covers_every_item_once():
    seen = []

    def kernel(lo, hi, out, lock):
        with lock:
            seen.append((lo, hi))
        out[lo:hi] += 1

    for n_items in (0, 1, 3, 100):
        seen.clear()
        out = np.zeros(n_items, dtype=np.int64)
        run_chunks(kernel, n_items, out, threading.Lock())
        np.testing.assert_array_equal(out, 1)
        assert sorted(seen) == sorted(set(seen))


def test_run_chunks_raises_a_chunks_error_and_nests():
    def failing(lo, hi):
        if lo == 0:
            raise RuntimeError("chunk 0")

    with pytest.raises(RuntimeError, match="chunk 0"):
        run_chunks(failing, 10)
    done, lock = [], threading.Lock()

    def inner(lo, hi):
        with lock:
            done.append(hi - lo)

    def outer(lo, hi):             # a nested call (helpers busy) runs on in its caller
        for _ in range(lo, hi):
            run_chunks(inner, 5)

    run_chunks(outer, 8)
    assert sum(done) == 40


def test_threaded_kernels_release_the_gil():
    kernels = [mtp_kernels._mtp_block_range, mtp_kernels._gather_block_range,
               training_kernels._design_range, training_kernels._radial_grad_range,
               neighbors._structure_pairs, neighbors._scan_blocks]
    for kernel in kernels:
        assert kernel.targetoptions.get("nogil"), kernel.py_func.__name__
