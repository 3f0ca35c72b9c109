"""Every path into the MTP kernels against the numpy reference (tests/reference_mtp.py).

The same structures go through each way the library reaches the compiled kernels: the
serial and the parallel evaluation kernel (`mtp_serial`, `mtp_parallel`), the batch kernel
of `evaluate_many` (`mtp_batch`), the training design rows (`batch_design`: X theta_lin gives
E, F and the virial, as the fit uses them) and the grading pass (`evaluate_with_gradients`,
the kernel with the parameter rows on, in both selection modes). Each must give the
reference's site energies (eq. 2), forces and stress.
"""
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from conftest import random_potential, triclinic_cell
from reference_mtp import reference_evaluate

from mtplib.active import evaluate_with_gradients
from mtplib.kernels.training import batch_design
from mtplib.training import prepare
from mtplib.training.loss import _k, pack

RTOL = 1e-10       # relative to the largest component of each quantity


def _serial(pot, atoms):
    assert len(atoms) < 128          # evaluate's choice: mtp_serial below 2 * ATOMS_PER_THREAD
    return pot.evaluate(atoms)


def _parallel(pot, atoms):
    return pot.evaluate(atoms, n_blocks=3)          # mtp_parallel over 3 blocks of atoms


def _batch(pot, atoms):
    """The structure second in a batch of two (mtp_batch: offsets into one CSR list)."""
    return pot.evaluate_many([atoms[:2], atoms])[1]


def _design_rows(pot, atoms):
    """The fit's path, prepare -> pack -> batch_design, with the structure second in its
    batch; X theta_lin gives E, F and the virial (the labels do not enter X)."""
    images = []
    for structure in (atoms[:2], atoms):
        structure = structure.copy()
        structure.calc = SinglePointCalculator(
            structure, energy=0.0, forces=np.zeros((len(structure), 3)),
            stress=np.zeros(6) if structure.pbc.all() else None)
        images.append(structure)
    (batch,) = pack(prepare(images, pot), pot.species_count + pot.alpha_scalar_moments)
    row_start = batch.rows(True)[0]
    X = batch_design(batch.cfg_atoms, row_start, batch.types, batch.offsets, batch.nbr, batch.vec,
                     *_k(pot), pot.kernel_arrays()["n_moments"], True)
    pred = X[row_start[1]:row_start[2]] @ np.concatenate([pot.species_coeffs, pot.moment_coeffs])
    virial = pred[-9:].reshape(3, 3).T            # design row 3b+a holds W[a, b]
    return dict(energy=pred[0], energies=None, forces=pred[1:-9].reshape(-1, 3),
                stress=_voigt(virial, atoms) if atoms.pbc.all() else None)


def _grade(per_atom):
    def path(pot, atoms):
        """Rows dE/dtheta of the same pass: E_i is linear in theta_lin = [species_coeffs,
        moment_coeffs], so the rows times theta_lin give the site energies back (eq. 2)."""
        res = evaluate_with_gradients(pot, atoms, per_atom=per_atom)
        theta_lin = np.concatenate([pot.species_coeffs, pot.moment_coeffs])
        from_rows = res["rows"][:, pot.radial_coeffs.size:] @ theta_lin
        if per_atom:
            np.testing.assert_allclose(from_rows, res["energies"], rtol=RTOL,
                                       atol=RTOL * np.abs(res["energies"]).max())
        else:       # configuration mode: one row, sum_i dE_i/dtheta / N
            assert from_rows[0] * len(atoms) == pytest.approx(res["energy"], rel=RTOL)
        return res
    return path


PATHS = {"serial": _serial, "parallel": _parallel, "batch": _batch, "design rows": _design_rows,
         "grade, configuration mode": _grade(False), "grade, neighborhood mode": _grade(True)}

# (level, species, structure): more atoms than one chunk of 32 lanes; three species (every
# species-pair block); level 20 (products of products: long chains in the reverse sweeps);
# a molecule (no cell, no stress)
CASES = {
    "level 8, 45 atoms": (8, ["Cu", "Au"], lambda: triclinic_cell(["Cu", "Au"], n_atoms=45, seed=6)),
    "level 16, 3 species": (16, ["Hf", "O", "Si"],
                            lambda: triclinic_cell(["Hf", "O", "Si"], n_atoms=7, seed=16)),
    "level 20": (20, ["Cu", "Au"], lambda: triclinic_cell(["Cu", "Au"], n_atoms=4, seed=5)),
    "level 10, molecule": (10, ["Hf", "O"], lambda: Atoms(
        "HfO2", positions=[[0, 0, 0], [1.9, 0.1, 0], [-0.6, 1.8, 0.3]])),
}


def _voigt(virial, atoms):
    v = 0.5 * (virial + virial.T)
    return v[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]] / atoms.get_volume()


_references = {}


def _case(name):
    """(potential, atoms, reference site energies, forces, stress), computed once per case."""
    if name not in _references:
        level, species, build = CASES[name]
        pot = random_potential(level, species, seed=level)
        atoms = build()
        site, forces, virial = reference_evaluate(pot, atoms, pot.types_of(atoms))
        stress = _voigt(virial, atoms) if atoms.pbc.all() else None
        _references[name] = (pot, atoms, site, forces, stress)
    return _references[name]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("path", PATHS)
def test_kernel_path_matches_numpy_reference(path, case):
    pot, atoms, site, forces, stress = _case(case)
    got = PATHS[path](pot, atoms.copy())
    if got["energies"] is not None:
        np.testing.assert_allclose(got["energies"], site, rtol=RTOL, atol=RTOL * np.abs(site).max())
    assert got["energy"] == pytest.approx(site.sum(), rel=RTOL, abs=RTOL * np.abs(site).max())
    np.testing.assert_allclose(got["forces"], forces, rtol=RTOL, atol=RTOL * np.abs(forces).max())
    # translation invariance: the forces sum to zero
    np.testing.assert_allclose(got["forces"].sum(axis=0), 0.0,
                               atol=RTOL * len(atoms) * np.abs(forces).max())
    if stress is None:
        assert got["stress"] is None
    else:
        np.testing.assert_allclose(got["stress"], stress, rtol=RTOL, atol=RTOL * np.abs(stress).max())
