"""Scenario schedules and grids through the workflow's exploration step (Novikov et al. 2021,
sec. 5.2.2): a liquid prepared by a schedule, a 2-scenario 3 x 3 grid, and the rule that with
gamma_select = gamma_break each trajectory contributes at most one configuration."""
import json
from dataclasses import asdict

import ase.io
import pytest
from ase.build import bulk

from mtplib.active import ActiveSet
from mtplib.active.grid import Segment, scaled_start
from mtplib.active.testing import emt_cells, label_emt, linear_fit, tiny_potential
from scripts.mtpflow.active import decide, explore, select
from scripts.mtpflow.settings import (ConfigError, MDRun, Settings, build, expand_scenarios,
                                      validate_config)

PHASES = {"Cu": {"bulk": {"name": "Cu", "cubic": True}}}
A_CU = 3.61     # ASE's fcc Cu lattice constant


def settings(active_learning):
    config = validate_config({"elements": ["Cu"], "phases": PHASES,
                              "active_learning": active_learning})
    return config, Settings.from_config(config).active_learning


@pytest.fixture(scope="module")
def rough(tmp_path_factory):
    """A level-8 Cu potential fitted to rattled and perfect cells (cold MD stays in, hot MD
    extrapolates), saved with its active set as the loop's files."""
    perfect = bulk("Cu", "fcc", a=A_CU, cubic=True).repeat((2, 2, 2))
    train = emt_cells(30, seed=1, rattle=0.1) + [label_emt(scaled_start(perfect, s))
                                                 for s in (0.98, 1.0, 1.03, 1.05)]
    pot = linear_fit(tiny_potential(8), train)
    folder = tmp_path_factory.mktemp("pot")
    pot.save(folder / "pot.mtp")
    ActiveSet.from_training(pot, train).save(folder / "pot.als.npz")
    return folder / "pot.mtp", folder / "pot.als.npz"


def run_explore(rough, run, al, config, folder, iteration=0):
    pot_file, state_file = rough
    return explore(pot_file, state_file, run, al, config["phases"], ["Cu"], iteration,
                   folder / f"{run.name}.extxyz", folder / f"{run.name}.json",
                   folder / f"{run.name}.last.extxyz", log=lambda *a, **k: None)


def test_schedule_prepares_the_run_and_the_record_lists_the_segments(rough, tmp_path):
    schedule = [{"steps": 6, "temperature": 2500, "scaling": 1.05}, {"steps": 4, "temperature": 1500}]
    config, al = settings({"gamma_select": 1e6, "gamma_break": 1e7, "scenarios": [
        {"name": "liquid", "start": {"phase": "Cu"}, "temperatures": [900],
         "lattice_scalings": [1.02], "steps": 5, "interval": 1, "schedule": schedule}]})
    run = al.runs()["liquid_900K"]
    assert run.schedule == (Segment(6, 2500.0, 1.05), Segment(4, 1500.0, 1.0))
    assert run.segments()[-1] == Segment(5, 900.0, 1.02) and run.steps_requested == 15
    assert build(MDRun, asdict(run)) == run          # as the rule's params carry it
    summary = run_explore(rough, run, al, config, tmp_path)
    assert summary["reason"] == "finished" and summary["steps"] == summary["steps_requested"] == 15
    assert [(s["steps"], s["temperature"], s["scaling"], s["reason"])
            for s in summary["segments"]] == [(6, 2500, 1.05, "finished"),
                                              (4, 1500, 1.0, "finished"),
                                              (5, 900, 1.02, "finished")]
    assert summary["graded"] == 6 + 4 + 5 + 3        # every step and each segment's start
    last = ase.io.read(tmp_path / "liquid_900K.last.extxyz")
    assert last.cell.lengths()[0] == pytest.approx(2 * A_CU * 1.02, rel=1e-12)
    assert last.info["segment"] == 2                 # accepted in the run's own segment

    def again(previous, name):
        return explore(*rough, run, al, config["phases"], ["Cu"], 1, tmp_path / f"{name}.extxyz",
                       tmp_path / f"{name}.json", tmp_path / f"{name}.last.extxyz",
                       previous_last=previous, log=lambda *a, **k: None)

    # a run that continues a state of its own segment is prepared already ...
    held = again(tmp_path / "liquid_900K.last.extxyz", "held")
    assert held["continued"] and held["steps"] == 5 and "segments" not in held
    assert ase.io.read(tmp_path / "held.last.extxyz").info["segment"] == 2
    # ... one accepted during the preparation (another temperature and cell) starts afresh
    last.info["segment"] = 0
    ase.io.write(tmp_path / "melting.extxyz", last)
    restarted = again(tmp_path / "melting.extxyz", "restarted")
    assert not restarted["continued"] and len(restarted["segments"]) == 3
    assert restarted["steps"] == 15


@pytest.mark.parametrize("schedule, extra, message", [
    ([{"steps": 5}], {},
     "config key 'active_learning.scenarios.0.schedule.0': 'temperature' is a required property"),
    ([{"steps": 5, "temperature": -10}], {},
     "config key 'active_learning.scenarios.0.schedule.0.temperature': -10 is less than or "
     "equal to the minimum of 0"),
    ([{"steps": 5, "temperature": 900, "scale": 1.1}], {},
     "config key 'active_learning.scenarios.0.schedule.0': 'scale' was unexpected (did you "
     "mean 'scaling'?)"),
    ([{"steps": 5, "temperature": 900}], {"ramp_start": 100, "ramp_steps": 10},
     "config key 'active_learning.scenarios[liquid].schedule': give either a schedule or a "
     "temperature ramp (ramp_steps = 10), not both"),
    ([{"steps": 5, "temperature": 900}], {"equilibration": {"steps": 20}},
     "config key 'active_learning.scenarios[liquid].schedule': give either a schedule or a "
     "damped start (equilibration.steps = 20), not both"),
    ([{"steps": 5, "temperature": 900}], {"equilibration": {"steps": 20, "friction": 0}},
     "config key 'active_learning.scenarios.0.equilibration.friction': 0 is less than or equal "
     "to the minimum of 0"),
])
def test_a_bad_schedule_is_one_line_naming_the_key(schedule, extra, message):
    with pytest.raises(ConfigError) as err:
        settings({"scenarios": [{"name": "liquid", "start": {"phase": "Cu"},
                                 "schedule": schedule, **extra}]})
    assert "\n" not in str(err.value) and str(err.value).startswith(message), str(err.value)


def test_damped_start_counts_in_the_run_and_a_continued_run_skips_it(rough, tmp_path):
    config, al = settings({"gamma_select": 1e6, "gamma_break": 1e7, "scenarios": [
        {"name": "box", "start": {"phase": "Cu"}, "temperatures": [900], "steps": 5,
         "interval": 1, "equilibration": {"steps": 7, "friction": 0.1}}]})
    run = al.runs()["box_900K"]
    assert run.equilibration == {"steps": 7, "friction": 0.1} and run.steps_requested == 12
    assert build(MDRun, asdict(run)) == run
    fresh = run_explore(rough, run, al, config, tmp_path)
    assert fresh["steps"] == fresh["steps_requested"] == 12 and fresh["graded"] == 13
    held = explore(*rough, run, al, config["phases"], ["Cu"], 1, tmp_path / "held.extxyz",
                   tmp_path / "held.json", tmp_path / "held.last.extxyz",
                   previous_last=tmp_path / "box_900K.last.extxyz", log=lambda *a, **k: None)
    assert held["continued"] and held["steps"] == held["steps_requested"] == 5


def test_a_bad_segment_past_the_schema_names_the_key():
    config, al = settings({"scenarios": [{"name": "liquid", "start": {"phase": "Cu"}}]})
    scenario = dict(config["active_learning"]["scenarios"][0], schedule=[{"steps": 3}])
    with pytest.raises(ConfigError, match=r"^config key 'active_learning.scenarios\[liquid\]"
                                          r".schedule\[0\]': missing 'temperature'$"):
        expand_scenarios([scenario])


def test_two_scenario_grid_through_the_workflow_one_configuration_per_trajectory(rough, tmp_path):
    """A solid and a liquid scenario (prepared by a schedule), each 3 temperatures x 3
    lattice scalings, with gamma_select = gamma_break: every trajectory's record has at most
    one candidate, a run with one stops there, and the selection and the iteration record
    see all 18 runs."""
    pot_file, state_file = rough
    grid = {"temperatures": [600, 1200, 2400], "lattice_scalings": [0.98, 1.0, 1.03],
            "steps": 100, "interval": 1}
    config, al = settings({"gamma_select": 2.0, "gamma_break": 2.0, "scenarios": [
        {"name": "solid", "start": {"phase": "Cu"}, **grid},
        {"name": "liquid", "start": {"phase": "Cu"}, **grid,
         "schedule": [{"steps": 10, "temperature": 1500, "scaling": 1.02}]}]})
    runs = al.runs()
    assert len(runs) == 18 and sum(r.scenario == "liquid" for r in runs.values()) == 9
    records = {name: run_explore(rough, run, al, config, tmp_path) for name, run in runs.items()}
    for name, rec in records.items():
        path = tmp_path / f"{name}.extxyz"
        frames = ase.io.read(path, ":") if path.stat().st_size else []
        assert rec["candidates"] == len(frames) <= 1, (name, rec)
        if frames:
            assert rec["reason"] == "extrapolation" and frames[0].info["gamma"] >= 2.0
            assert frames[0].info["scenario"] == name and rec["steps"] < rec["steps_requested"]
        else:
            assert rec["reason"] == "finished" and rec["steps"] == rec["steps_requested"]
    liquid = [r for n, r in records.items() if n.startswith("liquid")]
    assert all(len(r["segments"]) == 2 and r["steps_requested"] == 110 for r in liquid)
    assert len({r["seed"] for r in liquid}) == 9        # independent preparations
    stopped = sorted(n for n, r in records.items() if r["reason"] == "extrapolation")
    assert 3 <= len(stopped) <= 15, records           # some finish, some extrapolate
    sel = select(pot_file, state_file, [tmp_path / f"{n}.extxyz" for n in runs], None, al, ["Cu"],
                 0, tmp_path / "pool.extxyz", tmp_path / "selected.extxyz", tmp_path / "sel.json",
                 log=lambda *a, **k: None)
    assert sel["candidates"] == len(stopped) and 1 <= sel["selected"] <= len(stopped)
    (tmp_path / "err.json").write_text(json.dumps(
        {"training_set_size": 34 + sel["selected"], "labels_added": sel["selected"],
         "refit": "warm"}))
    (tmp_path / "failed.extxyz").write_text("")
    rec = decide([tmp_path / f"{n}.json" for n in runs], tmp_path / "sel.json",
                 tmp_path / "failed.extxyz", tmp_path / "err.json", al.gamma_break, 0,
                 tmp_path / "iteration.json", log=lambda *a, **k: None)
    assert set(rec["stop_reasons"]) == set(runs) and not rec["converged"]
    assert sorted(n for n, why in rec["stop_reasons"].items() if why == "extrapolation") == stopped



def test_a_run_stopped_at_min_dist_continues_with_fresh_velocities(rough, tmp_path):
    """The last state records the criterion that stopped its run. A run stopped where a pair
    crossed min_dist (nothing there can be labelled, so the same state and velocities would
    cross again) continues from its last accepted state with fresh velocities; a run stopped
    by gamma continues as it was."""
    import numpy as np

    config, al = settings({"gamma_select": 1.5, "gamma_break": 3.0, "scenarios": [
        {"name": "hot", "start": {"phase": "Cu", "supercell": [2, 2, 2]},
         "temperatures": [2500], "steps": 300, "interval": 1}]})
    run = al.runs()["hot_2500K"]
    first = run_explore(rough, run, al, config, tmp_path)
    assert first["reason"] == "extrapolation" and not first["velocities_redrawn"]
    state = ase.io.read(tmp_path / "hot_2500K.last.extxyz")
    assert state.info["stopped_by"] == "gamma"
    for stopped_by in ("gamma", "shortest_distance"):
        atoms = state.copy()
        atoms.info["stopped_by"] = stopped_by
        ase.io.write(tmp_path / f"{stopped_by}.extxyz", atoms)
        lines = []
        summary = explore(*rough, run, al, config["phases"], ["Cu"], 1,
                          tmp_path / f"{stopped_by}.c.extxyz", tmp_path / f"{stopped_by}.json",
                          tmp_path / f"{stopped_by}.last.extxyz",
                          previous_last=tmp_path / f"{stopped_by}.extxyz", log=lines.append)
        redrawn = stopped_by == "shortest_distance"
        assert summary["continued"] and summary["velocities_redrawn"] == redrawn
        assert any("fresh Maxwell-Boltzmann velocities" in line for line in lines) == redrawn
    # the same state, other velocities: the two continuations part at once
    first_steps = [ase.io.read(tmp_path / f"{s}.c.extxyz", ":") or
                   ase.io.read(tmp_path / f"{s}.last.extxyz", ":") for s in ("gamma",
                                                                           "shortest_distance")]
    assert not np.allclose(first_steps[0][0].positions, first_steps[1][0].positions)


def test_an_overheated_last_state_is_not_continued(rough, tmp_path):
    """A run that heated far above its thermostat (the HfO2 melt: accepted at 4600-4800 K under
    3000 K, then blowing up within a few steps, every iteration the same) starts afresh; a
    state at the thermostat's temperature is continued."""
    import numpy as np

    from scripts.mtpflow.active import overheated

    config, al = settings({"gamma_select": 1e6, "gamma_break": 1e7, "scenarios": [
        {"name": "md", "start": {"phase": "Cu", "supercell": [2, 2, 2]}, "temperatures": [300],
         "steps": 4, "interval": 1}]})
    run = al.runs()["md_300K"]
    first = run_explore(rough, run, al, config, tmp_path)
    assert first["reason"] == "finished"
    state = ase.io.read(tmp_path / "md_300K.last.extxyz")
    for name, temperature in (("warm", 300.0), ("hot", 600.0)):
        atoms = state.copy()
        atoms.set_momenta(state.get_momenta() * np.sqrt(temperature / state.get_temperature()))
        assert overheated(atoms, 300.0) == (name == "hot")          # 32 atoms: above 1.72 x
        ase.io.write(tmp_path / f"{name}.extxyz", atoms)
        lines = []
        summary = explore(*rough, run, al, config["phases"], ["Cu"], 1,
                          tmp_path / f"{name}.c.extxyz", tmp_path / f"{name}.json",
                          tmp_path / f"{name}.last.extxyz", previous_last=tmp_path / f"{name}.extxyz",
                          log=lines.append)
        assert summary["continued"] == (name == "warm")
        assert any("starting afresh" in line for line in lines) == (name == "hot")
