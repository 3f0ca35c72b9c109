"""Validation properties (mtplib.analysis.properties) on ASE's EMT Cu, each against an
independent route: elastic constants from stress differences against second differences of
the energy (another strain step), the bulk modulus from C against an equation-of-state fit."""
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.units import GPa

from mtplib.analysis.properties import (elastic_constants, energy_volume, equation_of_state,
                                        relax_unit_cell, voigt_bulk_modulus)

A0_EMT_CU = 3.5898   # ASE's EMT Cu lattice constant (Å): the energy minimum, checked below


def _energy(cu, strain):
    atoms = cu.copy()
    atoms.set_cell(cu.cell.array @ (np.eye(3) + strain), scale_atoms=True)
    atoms.calc = EMT()
    return atoms.get_potential_energy()


def _second_difference(cu, direction, h=0.002):
    """d²(E/V)/dε² along a strain direction, by central second differences (GPa)."""
    e0 = _energy(cu, np.zeros((3, 3)))
    ep, em = _energy(cu, h * direction), _energy(cu, -h * direction)
    return (ep + em - 2 * e0) / (h * h * cu.get_volume()) / GPa


@pytest.fixture(scope="module")
def cu():
    return bulk("Cu", "fcc", a=A0_EMT_CU, cubic=True)


def test_emt_cu_is_at_its_equilibrium(cu):
    atoms = cu.copy()
    atoms.calc = EMT()
    assert np.abs(atoms.get_stress()).max() / GPa < 0.05     # GPa: zero stress at a0


def test_elastic_constants_match_the_energy_route(cu):
    C = elastic_constants(cu, EMT(), delta=0.005)
    c11, c12, c44 = C[0, 0], C[0, 1], C[3, 3]
    # cubic symmetry: three independent constants, zero elsewhere
    np.testing.assert_allclose(np.diag(C)[:3], c11, rtol=1e-8)
    np.testing.assert_allclose(np.diag(C)[3:], c44, rtol=1e-8)
    assert abs(C[0, 3]) < 1e-6 and abs(C[3, 4]) < 1e-6
    x = np.zeros((3, 3)); x[0, 0] = 1.0
    xy = np.zeros((3, 3)); xy[0, 0] = xy[1, 1] = 1.0
    shear = np.zeros((3, 3)); shear[0, 1] = shear[1, 0] = 0.5     # engineering shear strain
    assert _second_difference(cu, x) == pytest.approx(c11, rel=0.01)
    assert _second_difference(cu, xy) == pytest.approx(2 * c11 + 2 * c12, rel=0.01)
    assert _second_difference(cu, shear) == pytest.approx(c44, rel=0.01)
    # ASE's EMT Cu at a0 (regression values of this EMT; GPa)
    assert (c11, c12, c44) == pytest.approx((172.5, 115.4, 89.9), abs=1.0)


def test_bulk_modulus_from_c_matches_the_equation_of_state(cu):
    volumes, energies = energy_volume(cu, EMT(), scales=np.linspace(0.98, 1.02, 9))
    assert len(volumes) == 9 and np.all(np.diff(volumes) > 0)
    v0, e0, b_eos = equation_of_state(volumes, energies)
    assert v0 == pytest.approx(A0_EMT_CU ** 3 / 4, rel=1e-3)
    assert energies.min() == pytest.approx(e0, abs=1e-4)
    b_elastic = voigt_bulk_modulus(elastic_constants(cu, EMT()))
    assert b_elastic == pytest.approx(b_eos, rel=0.01)
    assert b_eos == pytest.approx(134.4, abs=1.0)


def test_relax_unit_cell_finds_the_emt_lattice_constant_and_keeps_the_symmetry():
    """fcc Cu built 3 % too large: the relaxed cell is EMT's a0 and stays Fm-3m; relaxed as a
    2x2x2 supercell (min_height) and cut back, the same unit cell; 0 steps, the cell as given."""
    from ase.spacegroup.symmetrize import check_symmetry
    cu = bulk("Cu", "fcc", a=1.03 * A0_EMT_CU, cubic=True)
    relaxed, record = relax_unit_cell(cu, EMT(), fmax=1e-4, steps=100, log=lambda m: None)
    assert record["converged"] and record["supercell"] == [1, 1, 1]
    assert np.allclose(relaxed.cell.cellpar(), [A0_EMT_CU] * 3 + [90] * 3, atol=2e-3)
    assert check_symmetry(relaxed, symprec=1e-4).number == 225
    assert record["volume_per_atom_after"] < record["volume_per_atom_before"]
    big, big_record = relax_unit_cell(cu, EMT(), fmax=1e-4, steps=100,
                                      min_height=1.5 * 1.03 * A0_EMT_CU, log=lambda m: None)
    assert big_record["supercell"] == [2, 2, 2] and len(big) == len(cu)
    assert np.allclose(big.cell.array, relaxed.cell.array, atol=1e-3)
    assert np.allclose(big.positions, relaxed.positions, atol=1e-3)
    unrelaxed, short = relax_unit_cell(cu, EMT(), fmax=1e-4, steps=0, log=lambda m: None)
    assert not short["converged"] and np.allclose(unrelaxed.cell.array, cu.cell.array)
