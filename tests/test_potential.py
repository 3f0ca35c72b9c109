"""The MTP model: finite differences, invariances, bad input (kernel paths against the numpy
reference: test_kernel_paths.py)."""

import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from conftest import random_potential, triclinic_cell
from helpers.fd import central_difference, numerical_forces, numerical_stress
from reference_mtp import reference_evaluate

from mtplib import MTPCalculator, MTPInputError, MTPotential


def energy(pot, atoms):
    return pot.evaluate(atoms)["energy"]


@pytest.mark.parametrize("level,species", [(8, ["Cu", "Au"]), (16, ["Cu", "Au"]), (8, ["Hf", "O", "Si"]), (16, ["Hf", "O", "Si"])])
def test_forces_and_stress_match_finite_differences(level, species):
    pot = random_potential(level, species, seed=level + len(species))
    atoms = triclinic_cell(species, n_atoms=5, seed=level)
    res = pot.evaluate(atoms)
    num_forces = numerical_forces(atoms, lambda a: energy(pot, a), step=1e-5)
    np.testing.assert_allclose(res["forces"], num_forces, atol=1e-6 * np.abs(num_forces).max())
    num_stress = numerical_stress(atoms, lambda a: energy(pot, a), step=1e-5)
    np.testing.assert_allclose(res["stress"], num_stress, atol=1e-6 * np.abs(num_stress).max())


def test_invariance_rotation_translation_permutation_replication():
    pot = random_potential(12, ["Cu", "Au"], seed=7)
    atoms = triclinic_cell(["Cu", "Au"], n_atoms=6, seed=2)
    ref = pot.evaluate(atoms)
    # rotation of positions and cell together
    rot = atoms.copy()
    rot.rotate(37, (1, 2, 3), rotate_cell=True)
    rot.rotate(-71, (0.3, -1, 0.2), rotate_cell=True)
    res = pot.evaluate(rot)
    assert res["energy"] == pytest.approx(ref["energy"], rel=1e-11)
    R = np.linalg.solve(atoms.cell.array, rot.cell.array)          # cell_rot = cell @ R
    np.testing.assert_allclose(res["forces"], ref["forces"] @ R, atol=1e-9 * np.abs(ref["forces"]).max())
    # translation
    moved = atoms.copy()
    moved.translate([0.37, -1.2, 2.9])
    assert pot.evaluate(moved)["energy"] == pytest.approx(ref["energy"], rel=1e-11)
    # permutation
    perm = np.random.default_rng(0).permutation(len(atoms))
    res = pot.evaluate(atoms[perm])
    assert res["energy"] == pytest.approx(ref["energy"], rel=1e-11)
    np.testing.assert_allclose(res["forces"], ref["forces"][perm], atol=1e-10 * np.abs(ref["forces"]).max())
    # replication leaves the energy per atom unchanged
    big = atoms.repeat((2, 1, 3))
    res = pot.evaluate(big)
    assert res["energy"] / len(big) == pytest.approx(ref["energy"] / len(atoms), rel=1e-11)
    np.testing.assert_allclose(res["stress"], ref["stress"], atol=1e-10 * np.abs(ref["stress"]).max())


def test_calculator_gives_all_properties():
    pot = random_potential(8, ["Cu"], seed=0)
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
    atoms.rattle(0.05, seed=1)
    atoms.calc = MTPCalculator(pot)
    res = pot.evaluate(atoms)
    assert atoms.get_potential_energy() == res["energy"]
    assert atoms.get_potential_energy(force_consistent=True) == res["energy"]
    np.testing.assert_array_equal(atoms.get_forces(), res["forces"])
    np.testing.assert_array_equal(atoms.get_stress(), res["stress"])
    np.testing.assert_array_equal(atoms.get_potential_energies(), res["energies"])


def test_calculator_recomputes_after_changes_in_place():
    """The calculator keeps its own copy of the atoms: moving atoms, changing the cell or a
    species in place gives fresh results; charges and magnetic moments do not matter."""
    pot = random_potential(8, ["Cu", "Au"], seed=0)
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 1)
    atoms.rattle(0.05, seed=1)
    atoms.calc = MTPCalculator(pot)
    first = atoms.get_forces().copy()
    atoms.set_initial_magnetic_moments(np.ones(len(atoms)))
    assert atoms.calc.check_state(atoms) == []
    atoms.positions[0, 0] += 0.1
    np.testing.assert_array_equal(atoms.get_forces(), pot.evaluate(atoms)["forces"])
    assert not np.array_equal(atoms.get_forces(), first)
    atoms.cell[0, 0] += 0.1
    assert atoms.get_potential_energy() == pot.evaluate(atoms)["energy"]
    atoms.numbers[1] = 79
    assert atoms.get_potential_energy() == pot.evaluate(atoms)["energy"]


def test_bad_input_messages(tmp_path):
    pot = random_potential(8, ["Cu", "Au"], seed=0)
    atoms = bulk("Ni", "fcc", a=3.5)
    with pytest.raises(MTPInputError, match=r"species \['Ni'\] not in the potential"):
        pot.evaluate(atoms, where="test.extxyz[3]")
    atoms = bulk("Cu", "fcc", a=3.6) * 2
    atoms.positions[3, 1] = np.nan
    with pytest.raises(MTPInputError, match=r"non-finite coordinates \(atom 3\)"):
        pot.evaluate(atoms)
    flat = Atoms("Cu2", positions=[[0, 0, 0], [1, 1, 0]], cell=[[3, 0, 0], [0, 3, 0], [3, 3, 0]], pbc=True)
    with pytest.raises(MTPInputError, match="zero or near-zero volume"):
        pot.evaluate(flat)
    close = Atoms("Cu2", positions=[[0, 0, 0], [1.2, 0, 0]])
    with pytest.warns(UserWarning, match="closer than min_dist"):
        pot.evaluate(close)
    untrained = MTPotential.from_level(8, ["Cu"])
    with pytest.raises(MTPInputError, match="untrained"):
        untrained.evaluate(bulk("Cu"))
    anonymous = random_potential(8, 2, seed=0)
    with pytest.raises(MTPInputError, match="does not name its species"):
        anonymous.evaluate(bulk("Cu", "fcc", a=3.6) * (1, 1, 2))


def test_untrained_potential_counts_and_init_roundtrip(tmp_path):
    pot = MTPotential.from_level(16, ["Hf", "O"], 1.5, 5.0, 8)
    assert pot.alpha_scalar_moments == 92 and pot.radial_funcs_count == 4
    pot.save(tmp_path / "init.mtp")
    back = MTPotential.load(tmp_path / "init.mtp")
    assert back.species == ["Hf", "O"] and not back.is_trained
    np.testing.assert_array_equal(back.alpha_index_times, pot.alpha_index_times)


@pytest.mark.parametrize("n_blocks", [None, 3])
def test_parameter_gradients_match_finite_differences(n_blocks):
    """dE_i/dtheta (radial per species pair, species, moment coefficients) against central
    differences of the site energies; 3 species so that every species-pair block is used."""
    species = ["Hf", "O", "Si"]
    pot = random_potential(10, species, seed=11)
    atoms = triclinic_cell(species, n_atoms=6, seed=4)
    site, grad = pot.site_energy_gradients(atoms, n_blocks=n_blocks)
    assert grad.shape == (len(atoms), pot.parameter_count)
    theta = pot.get_parameters()

    def site_energies(parameters):
        pot.set_parameters(parameters)
        return pot.evaluate(atoms)["energies"]

    numeric = central_difference(site_energies, theta, step=1e-6).T
    pot.set_parameters(theta)
    np.testing.assert_allclose(site, pot.evaluate(atoms)["energies"], rtol=1e-12)
    np.testing.assert_allclose(grad, numeric, atol=1e-7 * np.abs(numeric).max())


def test_chunks_and_blocks_agree_with_reference_and_serial():
    """More atoms than one chunk of the kernel (32 lanes, the last one partial): the numpy
    reference holds, and the parallel path (blocks, forces gathered per atom) gives the same
    energies and forces as the serial one, bit for bit, whatever the number of blocks."""
    pot = random_potential(8, ["Cu", "Au"], seed=4)
    atoms = triclinic_cell(["Cu", "Au"], n_atoms=45, seed=6)
    serial = pot.evaluate(atoms)
    site, forces, virial = reference_evaluate(pot, atoms, pot.types_of(atoms))
    np.testing.assert_allclose(serial["energies"], site, rtol=1e-10)
    np.testing.assert_allclose(serial["forces"], forces, rtol=1e-10, atol=1e-10 * np.abs(forces).max())
    for n_blocks in (1, 2, 7):
        blocked = pot.evaluate(atoms, n_blocks=n_blocks)
        np.testing.assert_array_equal(blocked["energies"], serial["energies"])
        np.testing.assert_array_equal(blocked["forces"], serial["forces"])
        np.testing.assert_allclose(blocked["stress"], serial["stress"], rtol=1e-12,
                                   atol=1e-12 * np.abs(serial["stress"]).max())


def test_evaluate_many_equals_evaluate_and_names_bad_structures():
    """The parallel batch path gives `evaluate`'s energies and forces bit for bit (periodic
    cells, a molecule, a structure split into blocks by `evaluate`), and errors name the
    structure at fault."""
    pot = random_potential(8, ["Cu", "Au"], seed=7)
    cells = [triclinic_cell(["Cu", "Au"], n_atoms=n, seed=n) for n in (3, 6, 9)]
    big = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((4, 4, 5))        # 320 atoms: blocks
    big.rattle(0.05, seed=2)
    molecule_like = Atoms("CuAuCu", positions=[[0, 0, 0], [2.4, 0, 0], [0, 2.5, 0.3]])
    images = cells + [big, molecule_like, Atoms()]
    for one, many in zip([pot.evaluate(a) for a in images], pot.evaluate_many(images)):
        np.testing.assert_array_equal(many["energies"], one["energies"])
        np.testing.assert_array_equal(many["forces"], one["forces"])
        if one["stress"] is None:
            assert many["stress"] is None
        else:
            np.testing.assert_allclose(many["stress"], one["stress"], rtol=1e-12, atol=1e-14)
    bad = cells[0].copy()
    bad.positions[1, 2] = np.nan
    with pytest.raises(MTPInputError, match=r"data\[1\]: non-finite coordinates \(atom 1\)"):
        pot.evaluate_many([cells[0], bad])
    flat = cells[0].copy()
    flat.cell[2] = flat.cell[0]
    with pytest.raises(MTPInputError, match=r"data\[1\]: periodic cell has zero"):
        pot.evaluate_many([cells[0], flat])


def test_evaluate_many_in_groups(monkeypatch):
    """Split into groups of at most BATCH_ATOMS atoms (a larger structure alone), the batch
    path gives the same results, warns and fails naming the structure's index in the whole
    list."""
    import mtplib.potential
    pot = random_potential(8, ["Cu", "Au"], seed=7)
    images = [triclinic_cell(["Cu", "Au"], n_atoms=n, seed=n) for n in (3, 6, 9, 4, 12, 5)]
    whole = pot.evaluate_many(images)
    monkeypatch.setattr(mtplib.potential, "BATCH_ATOMS", 10)
    for one, many in zip(whole, pot.evaluate_many(images)):
        np.testing.assert_array_equal(many["energies"], one["energies"])
        np.testing.assert_array_equal(many["forces"], one["forces"])
        np.testing.assert_array_equal(many["stress"], one["stress"])
    close = images[4].copy()
    close.positions[1] = close.positions[0] + [0.3, 0, 0]
    with pytest.warns(UserWarning, match=r"data: 1 structure evaluation\(s\) had atoms closer "
                      r"than min_dist = .* \(shortest 0.300 Å, first in data\[4\]\)"):
        pot.evaluate_many(images[:4] + [close])
    gold = images[5].copy()
    gold.symbols[0] = "Ag"
    with pytest.raises(MTPInputError, match=r"data\[5\]: species \['Ag'\] not in the potential"):
        pot.evaluate_many(images[:5] + [gold])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_repeated_evaluation_reuses_freed_memory():
    """mtplib keeps freed arrays in the heap (`mtplib.memory`): evaluating the same large
    cell again touches memory it already has, instead of taking a page fault per 4 kB of its
    neighbour list and pair gradients (about 3 kB per atom)."""
    import resource
    import numba
    from mtplib.memory import keep_freed_memory
    if not keep_freed_memory():
        pytest.skip("not glibc, or MTPLIB_KEEP_FREED_MEMORY=0")
    pot = random_potential(8, ["Cu"], seed=0)
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((10, 10, 10))     # 4000 atoms
    atoms.rattle(0.05, seed=1)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)       # the main thread's heap (worker threads have their own)
    try:
        pot.evaluate(atoms)
        pot.evaluate(atoms)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        pot.evaluate(atoms)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    finally:
        numba.set_num_threads(threads)
    # without keep_freed_memory the third evaluation faults on its fresh pages again
    # (figures: benchmarks/RESULTS.md, bench_evaluate.py)
    assert faults < 100, faults


def test_str_is_a_one_paragraph_summary_with_level_species_and_sizes():
    pot = MTPotential.from_level(8, ["Cu", "Au"], 2.0, 5.0, 8)
    text = str(pot)
    assert "\n" not in text and len(text) < 400
    assert text.startswith("untrained MTP of level 8 for Cu, Au: 75 parameters (64 radial, "
                           "2 species, 9 moment coefficients)")
    assert "max_dist = 5 Å" in text
    for level in range(2, 22, 2):
        assert f"of level {level} for" in str(MTPotential.from_level(level, ["Cu"]))
