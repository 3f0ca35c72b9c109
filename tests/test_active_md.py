"""Learning-on-the-fly MD and relaxation, the committee criterion, and the CLI verbs."""
import ase.io
import numpy as np
import pytest
from ase.build import bulk

from mtplib.active import (ActiveSet, Committee, Criterion, Thresholds, force_std, run_md,
                           run_relax)
from mtplib.active.testing import emt_cells, linear_fit, tiny_potential
from mtplib.potential import MTPInputError


@pytest.fixture(scope="module")
def setup():
    train = emt_cells(30, seed=1)
    pot = linear_fit(tiny_potential(8), train)
    pot.source = "cu.mtp"
    return pot, train, ActiveSet.from_training(pot, train)


def start():
    return emt_cells(1, seed=11, rattle=0.02)[0]


def test_md_stops_at_gamma_break_and_writes_candidates(setup, tmp_path):
    pot, _, aset = setup
    cand = tmp_path / "cand.extxyz"
    traj = tmp_path / "traj.extxyz"
    lines = []
    res = run_md(pot, start(), active_set=aset, ensemble="nvt", temperature=3000, steps=400,
                 timestep=2.0, thresholds=Thresholds(gamma_select=1.2, gamma_break=3.0),
                 candidates=cand, trajectory=traj, trajectory_interval=5, progress_interval=10,
                 seed=0, scenario="hot", log=lines.append)
    assert res.reason == "extrapolation", res.message
    assert "extrapolation grade" in res.message and ">= gamma_break = 3" in res.message
    assert res.steps < 400
    frames = ase.io.read(cand, ":")
    assert len(frames) == res.candidates >= 1
    assert all(f.info["gamma"] > 1.2 and f.info["scenario"] == "hot" for f in frames)
    assert frames[-1].info["gamma"] >= 3.0 and frames[-1].info["step"] == res.steps
    assert len(ase.io.read(traj, ":")) == res.steps // 5 + 1
    assert any("step" in line and "gamma" in line and " K " in line for line in lines)
    # seeded: the same run again stops at the same step
    again = run_md(pot, start(), active_set=aset, ensemble="nvt", temperature=3000, steps=400,
                   timestep=2.0, thresholds=Thresholds(gamma_select=1.2, gamma_break=3.0),
                   seed=0, log=None)
    assert again.steps == res.steps


@pytest.mark.parametrize("ensemble", ["nve", "nvt-nhc", "npt"])
def test_md_ensembles_finish_quiet_runs(setup, ensemble):
    pot, _, aset = setup
    res = run_md(pot, start(), active_set=aset, ensemble=ensemble, temperature=50, steps=20,
                 timestep=1.0, thresholds=Thresholds(gamma_select=1e6, gamma_break=1e7, interval=5),
                 seed=1, log=None)
    assert res.reason == "finished" and res.steps == 20, res.message
    assert res.gradings >= 4


def test_md_grading_does_not_change_trajectory(setup):
    pot, _, aset = setup
    quiet = Thresholds(gamma_select=1e6, gamma_break=1e7)
    a, b = start(), start()
    run_md(pot, a, active_set=aset, ensemble="nvt", temperature=300, steps=15, seed=2, log=None,
           thresholds=quiet)
    run_md(pot, b, active_set=None, ensemble="nvt", temperature=300, steps=15, seed=2, log=None)
    np.testing.assert_array_equal(a.positions, b.positions)


def test_md_blow_up_on_min_distance(setup):
    pot, _, aset = setup
    atoms = start()
    res = run_md(pot, atoms, active_set=aset, steps=5, temperature=10, log=None,
                 thresholds=Thresholds(gamma_break=1e9, min_distance=2.6))
    assert res.reason == "blow-up" and "closer than 2.6 Å" in res.message and res.steps == 0


def test_md_unknown_species(setup):
    pot, _, aset = setup
    atoms = bulk("Au", "fcc", a=4.08, cubic=True)
    with pytest.raises(MTPInputError, match=r"gold-md: species \['Au'\] not in the potential cu\.mtp"):
        run_md(pot, atoms, active_set=aset, steps=2, scenario="gold-md", log=None)


def test_relax_with_grade(setup, tmp_path):
    pot, train, aset = setup
    atoms = train[0].copy()
    res = run_relax(pot, atoms, active_set=aset, fmax=0.2, steps=15, log=None,
                    thresholds=Thresholds(gamma_select=1e6, gamma_break=1e7, interval=5))
    assert res.reason in ("converged", "finished") and res.steps <= 15
    assert res.gradings >= 1 + res.steps // 5
    squeezed = train[0].copy()
    squeezed.set_cell(squeezed.cell * 0.8, scale_atoms=True)
    res = run_relax(pot, squeezed, active_set=aset, steps=50, log=None,
                    thresholds=Thresholds(gamma_select=1.5, gamma_break=2.0),
                    candidates=tmp_path / "c2.extxyz")
    assert res.reason == "extrapolation" and res.steps == 0
    assert ase.io.read(tmp_path / "c2.extxyz").info["gamma"] >= 2.0


def test_committee_force_std(setup):
    pot, train, _ = setup
    assert force_std(np.ones((3, 4, 3))).max() == 0.0
    forces = np.zeros((2, 2, 3))
    forces[1, 0, 0] = 2.0
    np.testing.assert_allclose(force_std(forces), [1.0, 0.0])
    members = [pot] + [linear_fit(pot.copy(), train[:8], seed=s, force_weight=0) for s in (1, 2)]
    committee = Committee(members)
    sigma, worst = committee.deviation(train[0])
    assert sigma.shape == (len(train[0]),) and worst > 0
    with pytest.raises(MTPInputError, match="at least 2 potentials"):
        Committee([pot])
    res = run_md(pot, start(), committee=committee, steps=10, temperature=300, log=None,
                 thresholds=Thresholds(std_select=0.0, std_break=1e9))
    assert res.reason == "finished" and res.max_force_std > 0


def test_cli_grade_select_md(setup, tmp_path, capsys):
    from mtplib.cli import main
    pot, train, _ = setup
    pot_path = tmp_path / "cu.mtp"
    pot.save(pot_path)
    ase.io.write(tmp_path / "train.extxyz", train)
    pool = emt_cells(6, seed=5, rattle=0.2, strain=0.08)
    ase.io.write(tmp_path / "pool.extxyz", pool)
    t, p = str(tmp_path / "train.extxyz"), str(tmp_path / "pool.extxyz")
    assert main(["grade", str(pot_path), t, p, str(tmp_path / "graded.extxyz"), "--species", "Cu"]) == 0
    assert (tmp_path / "cu.als.npz").exists()
    graded = ase.io.read(tmp_path / "graded.extxyz", ":")
    assert all("gamma" in a.info for a in graded)
    assert main(["select", str(pot_path), t, p, str(tmp_path / "sel.extxyz"), "--max", "2",
                 "--species", "Cu"]) == 0
    assert 1 <= len(ase.io.read(tmp_path / "sel.extxyz", ":")) <= 2
    ase.io.write(tmp_path / "start.extxyz", start())
    assert main(["md", str(pot_path), str(tmp_path / "start.extxyz"), "--species", "Cu",
                 "--temperature", "3000", "--steps", "300", "--timestep", "2", "--select", "1.2",
                 "--break", "3", "--candidates", str(tmp_path / "md.extxyz")]) == 0
    assert "extrapolation" in capsys.readouterr().out
    # a state file of another potential: a clear message naming both files
    other = pot.copy()
    other.moment_coeffs = other.moment_coeffs * 2
    other.save(tmp_path / "other.mtp")
    assert main(["grade", str(tmp_path / "other.mtp"), t, p, str(tmp_path / "g2.extxyz"),
                 "--state", str(tmp_path / "cu.als.npz"), "--species", "Cu"]) == 2
    err = capsys.readouterr().err
    assert "cu.als.npz: this active-set state was built for the potential" in err
    assert "other.mtp" in err


class LargestForce(Criterion):
    """A new criterion for the test: the largest atomic force (eV/Å), defined here only."""

    name, label, unit = "largest_force", "largest force", " eV/Å"

    def value(self, results, atoms):
        return float(np.sqrt((results["forces"] ** 2).sum(axis=1)).max())


def test_a_new_selection_criterion_is_one_class(setup, tmp_path):
    """A Criterion subclass passed in Thresholds selects candidates and stops the run, with no
    change to the MD driver; the selection stage ranks its candidates by its value."""
    pot, _, _ = setup
    cand = tmp_path / "cand.extxyz"
    res = run_md(pot, start(), ensemble="nvt", temperature=3000, steps=400, timestep=2.0,
                 thresholds=Thresholds(gamma_select=1e6, gamma_break=1e7, interval=1,
                                       criteria=(LargestForce(select=1.0, break_=3.0),)),
                 candidates=cand, seed=0, log=None)
    assert res.reason == "extrapolation" and "largest force" in res.message, res.message
    frames = ase.io.read(cand, ":")
    assert frames and all(f.info["largest_force"] > 1.0 for f in frames)
    assert frames[-1].info["largest_force"] >= 3.0 and "gamma" not in frames[-1].info
    order = LargestForce(select=1.0).rank(frames)
    values = [frames[k].info["largest_force"] for k in order]
    assert values == sorted(values, reverse=True) and len(order) == len(frames)


def test_the_md_driver_runs_any_calculator(tmp_path):
    """Validation's reference MD goes through the same driver, with the reference calculator."""
    from ase.calculators.emt import EMT
    traj = tmp_path / "traj.extxyz"
    res = run_md(None, start(), calculator=EMT(), ensemble="nvt", temperature=300, steps=20,
                 timestep=2.0, trajectory=traj, trajectory_interval=5, seed=0, log=None)
    assert res.reason == "finished" and res.steps == 20 and res.gradings == 0
    frames = ase.io.read(traj, ":")
    assert [f.info["step"] for f in frames] == [0, 5, 10, 15, 20]
    assert all(f.info["temperature"] > 0 and np.isfinite(f.get_potential_energy()) for f in frames)


def test_cli_state_goes_beside_the_output_never_beside_the_potential(setup, tmp_path, capsys):
    from mtplib.cli import main
    pot, train, _ = setup
    pot_dir, data_dir, out_dir = (tmp_path / d for d in ("pot", "data", "out"))
    for d in (pot_dir, data_dir, out_dir):
        d.mkdir()
    pot.save(pot_dir / "cu.mtp")
    t, p = str(data_dir / "train.extxyz"), str(data_dir / "pool.extxyz")
    ase.io.write(t, train)
    ase.io.write(p, emt_cells(3, seed=5, rattle=0.2, strain=0.08))
    ase.io.write(data_dir / "start.extxyz", start())
    inputs = {d: sorted(f.name for f in d.iterdir()) for d in (pot_dir, data_dir)}
    assert main(["grade", str(pot_dir / "cu.mtp"), t, p, str(out_dir / "graded.extxyz"),
                 "--species", "Cu"]) == 0
    assert sorted(f.name for f in out_dir.iterdir()) == ["cu.als.npz", "graded.extxyz"]
    assert "cu.als.npz: active set of" in capsys.readouterr().err
    # --state puts it where the user says
    assert main(["grade", str(pot_dir / "cu.mtp"), t, p, str(out_dir / "g2.extxyz"),
                 "--state", str(tmp_path / "mine.npz"), "--species", "Cu"]) == 0
    assert (tmp_path / "mine.npz").exists()
    # select and md: beside OUT and beside --candidates
    sel_dir, md_dir = tmp_path / "sel", tmp_path / "md"
    sel_dir.mkdir(), md_dir.mkdir()
    assert main(["select", str(pot_dir / "cu.mtp"), t, p, str(sel_dir / "sel.extxyz"),
                 "--species", "Cu"]) == 0
    assert (sel_dir / "cu.als.npz").exists()
    assert main(["md", str(pot_dir / "cu.mtp"), str(data_dir / "start.extxyz"), "--train", t,
                 "--species", "Cu", "--steps", "5", "--candidates",
                 str(md_dir / "cand.extxyz")]) == 0
    assert (md_dir / "cu.als.npz").exists()
    assert {d: sorted(f.name for f in d.iterdir()) for d in (pot_dir, data_dir)} == inputs
