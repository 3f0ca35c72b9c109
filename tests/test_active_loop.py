"""The active-learning loop's controls (issue 18): continuing runs, the temperature ramp, the
upper trust level gamma_max, several trajectories per scenario, and convergence criteria."""
import json

import ase.io
import numpy as np
import pytest

from mtplib.active import Thresholds, run_md
from mtplib.active.testing import emt_cells
from scripts.mtpflow.active import decide
from scripts.mtpflow.settings import Settings, validate_config


@pytest.fixture(scope="module")
def setup(cu_fit):
    return cu_fit


def start():
    return emt_cells(1, seed=11, rattle=0.02)[0]


def test_last_accepted_state_and_continuing_keeps_the_velocities(setup):
    pot, aset = setup
    res = run_md(pot, start(), active_set=aset, temperature=600, steps=60, timestep=2.0,
                 thresholds=Thresholds(gamma_select=1e6, gamma_break=1e7, interval=5),
                 seed=0, log=None)
    last = res.last_accepted
    assert res.reason == "finished" and res.graded == res.graded_below_select == 13
    assert last is not None and last.has("momenta") and res.last_selected_step == -1
    momenta = last.get_momenta().copy()
    kept, redrawn = last.copy(), last.copy()
    quiet = Thresholds(gamma_select=1e6, gamma_break=1e7)
    run_md(pot, kept, active_set=aset, temperature=600, steps=0, seed=5, thermalize=False,
           thresholds=quiet, log=None)
    run_md(pot, redrawn, active_set=aset, temperature=600, steps=0, seed=5, thresholds=quiet,
           log=None)
    np.testing.assert_array_equal(kept.get_momenta(), momenta)       # continued as it was
    assert not np.allclose(redrawn.get_momenta(), momenta)            # a fresh start redraws


def test_gamma_max_counts_untrusted_frames_without_selecting_them(setup, tmp_path):
    pot, aset = setup
    kwargs = dict(active_set=aset, temperature=3000, steps=400, timestep=2.0, seed=0, log=None)
    plain = run_md(pot, start(), thresholds=Thresholds(gamma_select=1.2, gamma_break=3.0),
                   candidates=tmp_path / "a.extxyz", **kwargs)
    trusted = run_md(pot, start(), thresholds=Thresholds(gamma_select=1.2, gamma_break=3.0,
                                                         gamma_max=1.5),
                     candidates=tmp_path / "b.extxyz", **kwargs)
    assert plain.steps == trusted.steps              # the same run: the trust level selects only
    a = ase.io.read(tmp_path / "a.extxyz", ":")
    b = ase.io.read(tmp_path / "b.extxyz", ":") if (tmp_path / "b.extxyz").exists() else []
    assert a[-1].info["gamma"] >= 3.0                # MLIP-2's rule: the stop frame is selected
    assert all(1.2 < f.info["gamma"] <= 1.5 for f in b)
    assert trusted.above_max == sum(f.info["gamma"] > 1.5 for f in a) > 0
    assert len(b) + trusted.above_max == len(a)


def test_temperature_ramp_starts_cold(setup):
    pot, aset = setup
    quiet = Thresholds(gamma_select=1e6, gamma_break=1e7, interval=1000)
    temps = {}
    for ramp in (0, 200):
        atoms = start()
        run_md(pot, atoms, active_set=aset, temperature=1500, steps=1, timestep=1.0, seed=3,
               ramp_start=50.0, ramp_steps=ramp, log=None, thresholds=quiet)
        temps[ramp] = atoms.get_temperature()
    assert temps[200] < 300 < temps[0]
    with pytest.raises(ValueError, match="ramp needs the Langevin thermostat"):
        run_md(pot, start(), active_set=aset, ensemble="nve", ramp_start=10.0, ramp_steps=5,
               steps=1, log=None)


def test_trajectories_per_scenario_get_their_own_seeds():
    phases = {"Cu": {"bulk": {"name": "Cu", "cubic": True}}}
    config = validate_config({"elements": ["Cu"], "phases": phases, "active_learning": {
        "scenarios": [{"name": "md", "start": {"phase": "Cu"}, "temperatures": [300, 900],
                       "trajectories": 3, "seed": 7}]}})
    runs = Settings.from_config(config).active_learning.runs()
    assert list(runs) == [f"md_{t}K_s{s}" for t in (300, 900) for s in (7, 8, 9)]
    assert [runs[f"md_300K_s{s}"].seed for s in (7, 8, 9)] == [7, 8, 9]


def test_scenario_grids_expand_to_one_run_per_combination():
    """Two scenarios, each a 3 x 3 grid of temperatures and lattice scalings (the MLIP
    paper's solid and liquid grids); gamma_select = gamma_break is allowed for them."""
    phases = {"Cu": {"bulk": {"name": "Cu", "cubic": True}}}
    grid = {"temperatures": [700, 900, 1100], "lattice_scalings": [0.98, 1.0, 1.02]}
    config = validate_config({"elements": ["Cu"], "phases": phases, "active_learning": {
        "gamma_select": 5.0, "gamma_break": 5.0, "scenarios": [
            {"name": "solid", "start": {"phase": "Cu"}, **grid},
            {"name": "liquid", "start": {"amorphous": {"composition": {"Cu": 1}, "density": 8.0}},
             **grid}]}})
    runs = Settings.from_config(config).active_learning.runs()
    assert len(runs) == 18 and "solid_900K_x1p02" in runs and "liquid_700K_x0p98" in runs
    run = runs["solid_900K_x1p02"]
    atoms = run.start_structure(config["phases"], "x")
    assert atoms.cell.lengths()[0] == pytest.approx(2 * 3.61 * 1.02, rel=1e-3)


def _summaries(tmp_path, runs):
    paths = []
    for k, run in enumerate(runs):
        p = tmp_path / f"run{k}.json"
        p.write_text(json.dumps({"scenario": f"s{k}", "steps_requested": 100, "message": "m",
                                 "reason": "finished", "max_gamma": 1.5, "steps": 100, **run}))
        paths.append(p)
    (tmp_path / "sel.json").write_text(json.dumps(
        {"candidates": 3, "selected": 2, "retried": 0, "nothing_new": False}))
    (tmp_path / "err.json").write_text(json.dumps(
        {"training_set_size": 10, "labels_added": 2, "refit": "warm"}))
    (tmp_path / "failed.extxyz").write_text("")
    return paths


@pytest.mark.parametrize("criterion, run, converged", [
    ({"criterion": "all_finished"}, {"last_selected_step": 95, "graded": 10, "graded_below_select": 5}, True),
    ({"criterion": "quiet_tail", "last_steps": 20}, {"last_selected_step": 95, "graded": 10, "graded_below_select": 9}, False),
    ({"criterion": "quiet_tail", "last_steps": 20}, {"last_selected_step": 70, "graded": 10, "graded_below_select": 9}, True),
    ({"criterion": "accurate_ratio", "accurate_ratio": 0.95}, {"last_selected_step": 10, "graded": 20, "graded_below_select": 18}, False),
    ({"criterion": "accurate_ratio", "accurate_ratio": 0.9}, {"last_selected_step": 10, "graded": 20, "graded_below_select": 18}, True),
])
def test_convergence_criteria(tmp_path, criterion, run, converged):
    paths = _summaries(tmp_path, [run])
    rec = decide(paths, tmp_path / "sel.json", tmp_path / "failed.extxyz", tmp_path / "err.json",
                 10.0, 1, tmp_path / "it.json", convergence=criterion, log=lambda m: None)
    assert rec["converged"] is converged, rec["message"]
    assert rec["labels_spent"] == 2


def test_candidates_closer_than_min_dist_are_counted_not_selected(setup, tmp_path):
    """A candidate with a pair under mtp.min_dist is not selected (its labels cannot be fitted:
    the HfO2 loop's refits broke on such), but counted, with one WARNING line; when it was the
    only candidate the loop is not called converged."""
    from scripts.mtpflow.active import decide, select
    from scripts.mtpflow.settings import ActiveLearningSettings, build

    pot, aset = setup
    pot_file, state_file = tmp_path / "pot.mtp", tmp_path / "pot.als.npz"
    pot.save(pot_file)
    aset.save(state_file)
    far, near = emt_cells(2, seed=7, rattle=0.05)
    near.positions[1] = near.positions[0] + [pot.min_dist - 0.2, 0.0, 0.0]
    for k, atoms in enumerate((far, near)):
        atoms.info.update(gamma=50.0 + k, scenario="md")
    config = validate_config({"elements": ["Cu"], "phases": {"Cu": {"bulk": {"name": "Cu"}}}})
    al = build(ActiveLearningSettings, config["active_learning"])

    def run(frames, name):
        ase.io.write(tmp_path / f"{name}.extxyz", frames)
        lines = []
        summary = select(pot_file, state_file, [tmp_path / f"{name}.extxyz"], None, al, ["Cu"], 3,
                         tmp_path / f"{name}.pool.extxyz", tmp_path / f"{name}.selected.extxyz",
                         tmp_path / f"{name}.json", log=lines.append)
        assert json.loads((tmp_path / f"{name}.json").read_text()) == summary
        return summary, [line for line in lines if line.startswith("WARNING")]

    summary, warning = run([far, near], "both")
    assert (summary["candidates"], summary["selected"]) == (2, 1)
    assert ase.io.read(tmp_path / "both.selected.extxyz").info["gamma"] == 50.0     # the far one
    assert summary["candidates_below_min_dist"] == 1
    assert summary["shortest_candidate_distance"] == pytest.approx(pot.min_dist - 0.2, abs=0.05)
    assert len(warning) == 1 and "1 of 2 candidates" in warning[0] and "mtp.min_dist" in warning[0]

    summary, warning = run([near], "near")
    assert summary["nothing_new"] and summary["candidates_below_min_dist"] == 1 and warning
    md = tmp_path / "md.json"
    md.write_text(json.dumps({"scenario": "md", "steps": 10, "steps_requested": 100,
                              "reason": "extrapolation", "max_gamma": 51.0,
                              "message": "step 10: extrapolation grade 51 >= gamma_break"}))
    errors = tmp_path / "errors.json"
    errors.write_text(json.dumps({"training_set_size": 30, "labels_added": 0, "refit": "kept"}))
    ase.io.write(tmp_path / "failed.extxyz", [])
    record = decide([md], tmp_path / "near.json", tmp_path / "failed.extxyz", errors, 10.0, 3,
                    tmp_path / "iteration.json", log=lambda *a: None)
    assert (record["converged"], record["reason"]) == (False, "close_contacts")
    assert "lower mtp.min_dist" in record["message"]


def test_a_refit_whose_active_set_is_singular_stops_with_one_line(setup, tmp_path, monkeypatch):
    """A diverged refit (the HfO2 loop at min_dist 1.4) left a singular active-set matrix and
    a numpy traceback; now the job ends with one line that names the iteration, the refit's
    training errors and the likely cause."""
    import scripts.mtpflow.active as active
    from scripts.mtpflow.settings import (ActiveLearningSettings, FitSettings, MTPSettings,
                                          build)

    pot, _ = setup
    pot.save(tmp_path / "pot.mtp")
    train, test = emt_cells(6, seed=3), emt_cells(2, seed=4)
    ase.io.write(tmp_path / "train.extxyz", train)
    ase.io.write(tmp_path / "test.extxyz", test)
    ase.io.write(tmp_path / "labelled.extxyz", [])
    config = validate_config({"elements": ["Cu"], "phases": {"Cu": {"bulk": {"name": "Cu"}}}})

    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(active.ActiveSet, "from_training", singular)
    out = {k: tmp_path / f"out.{k}" for k in ("extxyz", "mtp", "npz", "json")}
    with pytest.raises(active.RefitFailed) as err:
        active.refit(tmp_path / "pot.mtp", tmp_path / "train.extxyz",
                     tmp_path / "labelled.extxyz", tmp_path / "test.extxyz", None, ["Cu"],
                     build(MTPSettings, config["mtp"]), build(FitSettings, config["fit"]),
                     build(ActiveLearningSettings, config["active_learning"]), 3,
                     out["extxyz"], out["mtp"], out["npz"], out["json"], log=lambda *a: None)
    message = str(err.value)
    assert "\n" not in message and message.startswith("iteration 3: ")
    assert "singular" in message and "meV/atom" in message and "min_dist" in message
    assert not out["npz"].exists()
