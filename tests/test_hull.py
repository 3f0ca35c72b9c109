"""Convex hull by active-learning relaxation (Novikov et al. 2021, sec. 6): the pool, the
relaxation that stops at gamma_break, the loop, formation energies and the hull."""
import csv
import warnings

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.symbols import string2symbols

from mtplib.active import ActiveSet, Thresholds
from mtplib.active.pool import PoolError, PoolSettings, enumerate_pool
from mtplib.active.relax import relax_pool, relax_with_reference
from mtplib.active.relax_learning import label, learn_by_relaxation
from mtplib.active.select import select_add
from mtplib.active.testing import linear_fit, tiny_potential
from mtplib.analysis.hull import HullError, convex_hull, hull_plot, write_hull_csv


def _structure(symbols, lattice="fcc"):
    """A primitive (one symbol) or cubic (two or four symbols) cell of `lattice`."""
    symbols = string2symbols(symbols)
    atoms = bulk("Ag", lattice, a=4.0, cubic=len(symbols) > 1)
    atoms.symbols = symbols
    return atoms


# ---- formation energies and the hull against a hand calculation ------------------------
def hand_set():
    """Ag (-1 eV/atom), Pd (-2), AgPd L1_0 and Ag3Pd L1_2 and a bcc Ag above fcc."""
    images = [_structure("Ag"), _structure("Pd"), _structure("AgAgPdPd"),
              _structure("AgAgAgPd"), _structure("AgAg", "bcc")]
    energies = [-1.0, -2.0, 2 * -1 + 2 * -2 - 4 * 0.1, 3 * -1 - 2 - 4 * 0.02, 2 * -0.9]
    return images, energies


def test_formation_energies_and_hull_distances_by_hand(tmp_path):
    images, energies = hand_set()
    hull = convex_hull(energies, images, ["Ag", "Pd"])
    np.testing.assert_allclose(hull.mu, [-1.0, -2.0])
    # E_f = (E - N_Ag mu_Ag - N_Pd mu_Pd) / N
    np.testing.assert_allclose(hull.formation_energy, [0.0, 0.0, -0.1, -0.02, 0.1], atol=1e-12)
    np.testing.assert_allclose(hull.fractions[:, 0], [0, 1, 0.5, 0.25, 0])
    # Ag3Pd at x = 1/4 lies 0.03 eV/atom above the Ag-AgPd tie line (-0.05 there)
    np.testing.assert_allclose(hull.distance, [0.0, 0.0, 0.0, 0.03, 0.1], atol=1e-12)
    assert hull.on_hull.tolist() == [True, True, True, False, False]
    xs, es = hull.line()
    np.testing.assert_allclose(xs, [0, 0.5, 1])
    np.testing.assert_allclose(es, [0, -0.1, 0], atol=1e-12)
    np.testing.assert_allclose(hull.hull_energy([[0.75]]), [-0.05])
    path = write_hull_csv(tmp_path / "hull.csv", hull, extra={"lattice": ["fcc"] * 4 + ["bcc"]})
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 5
    assert rows[3]["distance_to_hull_meV_per_atom"] == "30.0000" and rows[3]["on_hull"] == "0"
    assert rows[2]["formation_energy_meV_per_atom"] == "-100.0000" and rows[4]["lattice"] == "bcc"
    png = hull_plot(tmp_path / "hull.png", hull, reference=hull)
    assert png.stat().st_size > 10_000


def test_hull_moves_when_a_compound_rises_above_it():
    images, energies = hand_set()
    energies[2] = 2 * -1 + 2 * -2 + 4 * 0.05        # AgPd now 50 meV/atom above zero
    hull = convex_hull(energies, images, ["Ag", "Pd"])
    # the hull is Ag - Ag3Pd (x 1/4, -0.02) - Pd; at x = 1/2 it is -0.02 * (1/2) / (3/4)
    np.testing.assert_allclose(hull.distance[2], 0.05 + 0.02 * 2 / 3, atol=1e-12)
    assert hull.on_hull.tolist() == [True, True, False, True, False]
    energies[3] = 3 * -1 - 2 + 4 * 0.01             # every compound above: the tie line
    hull = convex_hull(energies, images, ["Ag", "Pd"])
    np.testing.assert_allclose(hull.distance, [0, 0, 0.05, 0.01, 0.1], atol=1e-12)
    assert hull.on_hull.tolist() == [True, True, False, False, False]


def test_hull_without_a_pure_structure_names_the_element():
    images, energies = hand_set()
    with pytest.raises(HullError, match="no structure of Pd alone"):
        convex_hull(energies[2:], images[2:], ["Ag", "Pd"])
    with pytest.raises(HullError, match="element Pd, not in"):
        convex_hull(energies, images, ["Ag", "Cu"])


# ---- the candidate pool -------------------------------------------------------------
def test_pool_enumeration_is_reproducible_from_its_settings():
    settings = PoolSettings(elements=("Ag", "Pd"), lattices=("fcc", "hcp"), max_atoms=4)
    a, b = enumerate_pool(settings), enumerate_pool(settings)
    assert len(a) == len(b) > 20
    for x, y in zip(a, b):
        assert x.info == y.info
        np.testing.assert_array_equal(x.numbers, y.numbers)
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.cell.array, y.cell.array)
    assert max(len(x) for x in a) == 4
    assert {x.info["lattice"] for x in a} == {"fcc", "hcp"}
    # every composition with at most 4 atoms per cell is there
    fractions = {round(float((x.numbers == 46).mean()), 6) for x in a}
    assert fractions == {round(f, 6) for f in (0, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 4, 1)}
    # Vegard's law: the volume per atom is the composition-weighted reference volume
    v_ag, v_pd = 4.09 ** 3 / 4, 3.89 ** 3 / 4
    for x in a:
        n_pd = (x.numbers == 46).sum()
        assert x.get_volume() == pytest.approx((len(x) - n_pd) * v_ag + n_pd * v_pd, rel=1e-12)
    # a capped pool is a seeded draw: same seed, same pool; another seed, another pool
    capped = PoolSettings(max_atoms=4, max_structures=15, seed=3)
    ids = [x.info["pool_id"] for x in enumerate_pool(capped)]
    assert len(ids) == 15 and ids == [x.info["pool_id"] for x in enumerate_pool(capped)]
    other = PoolSettings(max_atoms=4, max_structures=15, seed=4)
    assert ids != [x.info["pool_id"] for x in enumerate_pool(other)]


def test_pool_settings_errors_name_the_setting(tmp_path):
    with pytest.raises(PoolError, match="lattices: unknown lattice 'sc'"):
        enumerate_pool(PoolSettings(lattices=("sc",)))
    with pytest.raises(PoolError, match="elements: need two or more"):
        enumerate_pool(PoolSettings(elements=("Ag",)))
    (tmp_path / "x.xyz").write_text("1\n\nCu 0 0 0\n")
    with pytest.raises(PoolError, match=r"structure_files: .*x.xyz\[0\] has elements \['Cu'\]"):
        enumerate_pool(PoolSettings(max_atoms=1, structure_files=(str(tmp_path / "x.xyz"),)))


# ---- relaxation with the grade ------------------------------------------------------
@pytest.fixture(scope="module")
def small_model():
    """A linear level-6 Ag-Pd MTP fitted to a few strained fcc cells, and its active set."""
    rng = np.random.default_rng(0)
    cells = []
    for symbols in ("Ag", "Pd", "AgAgPdPd", "AgPdPdPd"):
        for s in (0.98, 1.0, 1.02):
            atoms = _structure(symbols)
            atoms.set_cell(atoms.cell.array * s * (1 + 0.01 * rng.normal(size=(3, 3))),
                           scale_atoms=True)
            cells.append(atoms)
    train, failed = label(cells, EMT)
    assert len(train) == len(cells) and not failed
    pot = linear_fit(tiny_potential(6, ("Ag", "Pd"), min_dist=2.0, max_dist=5.0), train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aset = ActiveSet.from_training(pot, train)
    return pot, aset, train


def test_relaxation_that_meets_gamma_break_stops_and_is_selected(small_model):
    pot, aset, _ = small_model
    far = bulk("Ag", "bcc", a=3.0, cubic=True)        # compressed bcc: far from the fcc data
    far.symbols = "AgPd"
    gamma0 = aset.grade(far.copy())
    assert gamma0 > 5
    (stopped,) = relax_pool(pot, [far], active_set=aset,
                            thresholds=Thresholds(gamma_select=2, gamma_break=5))
    assert stopped.status == "stopped" and stopped.steps == 0
    assert "gamma_break = 5" in stopped.message
    # the returned configuration is the extrapolative one, with the grade that stopped it
    assert aset.grade(stopped.atoms.copy()) == pytest.approx(stopped.max_gamma, rel=1e-10)
    assert stopped.max_gamma >= 5
    sel = select_add(aset, [stopped.atoms])
    assert sel.selected == [0]
    # with gamma_break out of reach the same start relaxes: converged or out of steps,
    # recorded with its steps, not dropped
    (free,) = relax_pool(pot, [far], active_set=aset, steps=3,
                         thresholds=Thresholds(gamma_select=1e9, gamma_break=1e9))
    assert free.status in ("converged", "not-converged") and free.steps <= 3
    assert np.isfinite(free.energy) and free.atoms.info["status"] == free.status


def test_reference_relaxation_counts_its_calls():
    atoms = _structure("AgAgPdPd")
    atoms.rattle(0.02, seed=1)
    res = relax_with_reference(atoms, EMT(), fmax=0.01, steps=100)
    assert res.status == "converged"
    assert res.calls == res.steps + 1          # BFGS: one evaluation per step and the start
    fresh = res.atoms.copy()
    fresh.calc = EMT()
    assert fresh.get_potential_energy() == pytest.approx(res.energy, abs=1e-10)
    assert np.abs(fresh.get_forces()).max() < 0.01


@pytest.mark.slow
def test_learning_loop_ends_when_every_relaxation_finishes(tmp_path):
    pool = enumerate_pool(PoolSettings(lattices=("fcc",), max_atoms=2))
    start = []
    for atoms in pool:                          # the pool at three volumes
        for s in (0.97, 1.0, 1.03):
            a = atoms.copy()
            a.set_cell(a.cell.array * s, scale_atoms=True)
            start.append(a)
    train, _ = label(start, EMT)
    pot = tiny_potential(4, ("Ag", "Pd"), min_dist=2.0, max_dist=5.0, radial_basis_size=4)
    res = learn_by_relaxation(pool, train, pot, EMT, max_iterations=10,
                              fit_options=dict(max_iter=30), out_dir=tmp_path, log=None)
    assert res.converged
    last = res.iterations[-1]
    assert last["stopped"] == 0 and last["converged"] + last["not-converged"] == len(pool)
    assert res.labels_spent == len(start) + sum(r["selected"] for r in res.iterations)
    assert len(res.training) == res.labels_spent
    assert (tmp_path / f"iter_{last['iteration']:03d}" / "iteration.json").exists()

    # interrupted after iteration 0: the rerun reuses its labels and refit, and ends as the
    # uninterrupted loop did, bit for bit
    assert last["iteration"] >= 2, "the loop must run past iteration 1 for this check"
    for it in tmp_path.glob("iter_*"):
        if it.name != "iter_000":
            (it / "iteration.json").unlink()
    calls, lines = [], []

    def counted():
        calls.append(1)
        return EMT()

    again = learn_by_relaxation(pool, train, pot, counted, max_iterations=10,
                                fit_options=dict(max_iter=30), out_dir=tmp_path,
                                log=lines.append)
    assert lines[0].startswith("resuming after iteration 0")
    assert again.iterations == res.iterations
    assert len(calls) == res.labels_spent - len(start) - res.iterations[0]["labels"]
    np.testing.assert_array_equal(again.potential.moment_coeffs, res.potential.moment_coeffs)
    assert [r.energy for r in again.relaxations] == [r.energy for r in res.relaxations]
    # other settings: the saved iterations are not reused
    lines.clear()
    learn_by_relaxation(pool, train, pot, EMT, max_iterations=0, fmax=0.02,
                        fit_options=dict(max_iter=30), out_dir=tmp_path, log=lines.append)
    assert not lines[0].startswith("resuming") and not (tmp_path / "iter_001").exists()


def test_cli_pool_reference_relaxation_and_hull(tmp_path, capsys):
    from mtplib.cli import main
    pool, relaxed = tmp_path / "pool.extxyz", tmp_path / "relaxed.extxyz"
    assert main(["pool", str(pool), "--elements", "Ag", "Pd", "--lattices", "fcc",
                 "--max-atoms", "2"]) == 0
    assert "4 candidate structures" in capsys.readouterr().out
    assert main(["relax-pool", "-", str(pool), str(relaxed), "--reference", "emt"]) == 0
    assert "4 relaxations {'converged': 4" in capsys.readouterr().out
    assert main(["hull", str(relaxed), "--elements", "Ag", "Pd", "--csv",
                 str(tmp_path / "hull.csv"), "--plot", str(tmp_path / "hull.png")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "hull.csv")))
    assert [r["name"] for r in rows] == ["fcc-00000", "fcc-00001", "fcc-00002", "fcc-00003"]
    # EMT puts both ordered AgPd cells above the Ag-Pd tie line
    assert [r["on_hull"] for r in rows] == ["1", "1", "0", "0"]
    assert all(float(r["formation_energy_meV_per_atom"]) > 10 for r in rows[2:])
    assert main(["pool", str(pool), "--elements", "Ag", "--max-atoms", "2"]) == 2
    assert "elements: need two or more distinct elements" in capsys.readouterr().err
