"""Atoms closer than min_dist (issue 23, item 4): one warning line per run (an MD run, a data
set), with the count, the shortest distance, min_dist and why it matters; none with the
repulsive core, the schema's default."""
import warnings

import numpy as np
import pytest
from ase.build import bulk

from mtplib.active import ActiveSet, Thresholds, run_md
from mtplib.active.testing import emt_cells, linear_fit, tiny_potential
from scripts.mtpflow.logs import warning_summary
from scripts.mtpflow.settings import Settings, validate_config

MIN_DIST = 2.45      # above most of the nearest-neighbour distances of hot fcc Cu (2.55 Å)


def close_contact_warnings(caught):
    return [str(w.message) for w in caught if "closer than min_dist" in str(w.message)]


@pytest.fixture(scope="module")
def potentials():
    train = emt_cells(20, seed=1, rattle=0.05)
    with warnings.catch_warnings():       # the training cells come closer than min_dist too
        warnings.simplefilter("ignore")
        plain = linear_fit(tiny_potential(8, min_dist=MIN_DIST), train)
    repulsive = plain.copy()
    repulsive.radial_basis_type = "RBChebyshev_repuls"
    return plain, repulsive, train


def squeezed(n, seed):
    """n Cu cells with one atom pushed towards a neighbour, to 2.0 + 0.02 k Å."""
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
        atoms.rattle(0.01, seed=seed + k)
        d = atoms.positions[1] - atoms.positions[0]
        atoms.positions[1] = atoms.positions[0] + d / np.linalg.norm(d) * (2.0 + 0.02 * k)
        out.append(atoms)
    return out


def test_a_data_set_gives_one_line_with_count_and_shortest_distance(potentials):
    plain, repulsive, _ = potentials
    images = squeezed(5, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain.evaluate_many(images, where="test set")
    lines = close_contact_warnings(caught)
    assert len(lines) == 1 and "\n" not in lines[0]
    shortest = min(a.get_all_distances(mic=True)[np.triu_indices(len(a), 1)].min() for a in images)
    assert lines[0].startswith(f"test set: 5 structure evaluation(s) had atoms closer than "
                               f"min_dist = {MIN_DIST:g} Å (shortest {shortest:.3f} Å, first in "
                               f"test set[0]), where the potential is not trained")
    assert "nothing repels" in lines[0] and "RBChebyshev_repuls" in lines[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repulsive.evaluate_many(images)
        plain.evaluate(images[0])                 # one structure alone: one line too
    lines = close_contact_warnings(caught)
    assert len(lines) == 1 and lines[0].startswith("structure: atoms 2.000 Å apart")


@pytest.mark.parametrize("engine", ["ase", "native"])
def test_an_md_run_gives_one_line(potentials, engine):
    plain, repulsive, train = potentials
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aset = ActiveSet.from_training(plain, train, where="train")
    lines = close_contact_warnings(caught)        # a training set is one run too
    assert len(lines) == 1 and lines[0].startswith("train: ") and "first in train[" in lines[0]
    runs = {}
    for name, pot in (("plain", plain), ("repulsive", repulsive)):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = run_md(pot, atoms, active_set=aset if pot is plain else None, temperature=1500,
                         steps=60, seed=1, scenario=f"hot_{name}", log=None, engine=engine,
                         thresholds=Thresholds(gamma_select=1e9, gamma_break=1e10))
        runs[name] = (res, close_contact_warnings(caught))
    res, lines = runs["plain"]
    assert res.steps == 60 and len(lines) == 1, lines
    count = int(lines[0].split(": ")[1].split()[0])
    assert lines[0].startswith("hot_plain (MD): ") and 1 <= count <= 61
    assert f"closer than min_dist = {MIN_DIST:g} Å (shortest " in lines[0]
    assert runs["repulsive"][1] == []


def test_the_job_log_adds_up_the_runs_lines():
    lines = warning_summary(["md_a (MD): 7 structure evaluation(s) had atoms closer than "
                             "min_dist = 2.45 Å (shortest 2.101 Å, first in md_a (MD)), ...",
                             "data[3]: atoms 2.300 Å apart, closer than min_dist = 2.45 Å, ..."])
    assert len(lines) == 1 and lines[0].startswith(
        "8 structure evaluation(s) had atoms closer than mtp.min_dist = 2.45 Å (smallest 2.101 Å)")


def test_the_demo_default_is_the_repulsive_core():
    """The schema's default basis has the repulsive core, so the demo's hot runs warn about
    no close contact (the core is the designed behaviour there)."""
    config = validate_config({"elements": ["Cu"], "phases": {"Cu": {"bulk": {"name": "Cu"}}}})
    pot = Settings.from_config(config).mtp.initial_potential(["Cu"])
    assert pot.radial_basis_type == "RBChebyshev_repuls" and pot.repulsive
