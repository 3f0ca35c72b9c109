"""Coordination numbers per species, the total RDF and mass densities on analytic crystals:
fcc Cu (12 nearest neighbours), rocksalt NaCl (6 unlike nearest neighbours, 12 like ones)."""

import numpy as np
import pytest
from ase.build import bulk

from mtplib.analysis.structure import (coordination_numbers, mass_densities, rdf,
                                       resolve_cutoffs, species_coordination, total_rdf)

A_CU = 3.61
A_NACL = 5.64


@pytest.fixture(scope="module")
def rocksalt():
    atoms = bulk("NaCl", "rocksalt", a=A_NACL, cubic=True).repeat(2)
    atoms.rattle(0.02, seed=3)                    # no atom on a bin edge or a cutoff
    return atoms


def test_fcc_has_12_neighbours_with_the_first_minimum_cutoff():
    atoms = bulk("Cu", "fcc", a=A_CU, cubic=True).repeat(3)
    r, g, _ = rdf([atoms], r_max=5.0, bins=500)
    cutoffs = resolve_cutoffs(None, ["Cu"], r, g)
    assert A_CU / np.sqrt(2) < cutoffs["Cu-Cu"] < A_CU
    cn = species_coordination([atoms], cutoffs, ["Cu"])
    assert cn == {"Cu": {"Cu": pytest.approx(12.0), "total": pytest.approx(12.0)}}


def test_rocksalt_has_6_unlike_neighbours(rocksalt):
    cn = species_coordination([rocksalt, rocksalt], {"Na-Cl": 3.3, "Na-Na": 3.3, "Cl-Cl": 3.3},
                              ["Na", "Cl"])
    assert cn["Na"] == {"Na": 0.0, "Cl": 6.0, "total": 6.0}
    assert cn["Cl"] == {"Na": 6.0, "Cl": 0.0, "total": 6.0}
    # a cutoff given as 'Cl-Na' is the same pair; a pair without a cutoff counts nothing
    assert species_coordination(rocksalt, {"Cl-Na": 3.3}, ["Na", "Cl"])["Cl"]["Na"] == 6.0


def test_rocksalt_first_minimum_cutoffs_count_the_first_shell_of_each_pair(rocksalt):
    r, g, density = rdf([rocksalt], r_max=5.6, bins=280, elements=["Na", "Cl"])
    cutoffs = resolve_cutoffs(None, ["Na", "Cl"], r, g)
    cn = species_coordination(rocksalt, cutoffs, ["Na", "Cl"])
    assert (cn["Na"]["Cl"], cn["Na"]["Na"], cn["Cl"]["Cl"]) == (6.0, 12.0, 12.0)
    # the total g(r) integrates to the neighbours of any atom: 6 within 3.3 Å
    total = total_rdf(g, density)
    n = coordination_numbers(r, total, sum(density.values()))
    assert n[np.searchsorted(r, 3.3)] == pytest.approx(6.0, abs=1e-9)


def test_total_rdf_of_one_species_is_its_partial():
    atoms = bulk("Cu", "fcc", a=A_CU, cubic=True).repeat(2)
    r, g, density = rdf([atoms], r_max=4.0, bins=40)
    np.testing.assert_allclose(total_rdf(g, density), g["Cu-Cu"])


def test_mass_density_of_fcc_copper():
    atoms = bulk("Cu", "fcc", a=A_CU, cubic=True)
    expected = 4 * 63.546 * 1.66053906660 / A_CU ** 3
    assert mass_densities([atoms, atoms.repeat(2)]) == pytest.approx([expected] * 2, rel=1e-4)
    assert expected == pytest.approx(8.93, abs=0.05)
