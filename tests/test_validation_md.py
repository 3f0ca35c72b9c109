"""Stage-5 glue (scripts/mtpflow/validation.py) on a tiny Cu-Au case with EMT as the reference:
validation MD from an amorphous start graded against the active set (never stopped by the
grade, frames at or above gamma_break counted), a smaller reference box, the comparison
(partial and total RDF, ADF, coordination numbers, densities) and the summary's verdicts."""
import json

import numpy as np
import pytest
from ase.io import read, write

from mtplib.active import ActiveSet
from mtplib.active.testing import emt_cells, linear_fit, tiny_potential
from scripts.mtpflow.settings import Settings, validate_config
from scripts.mtpflow.validation import (compare, reference_crystal_checks, relabel_own_md,
                                        summarize, validation_md)

ELEMENTS = ["Cu", "Au"]
BOX = {"composition": {"Cu": 3, "Au": 1}, "density": 10.0, "n_atoms": 16, "seed": 2,
       "min_distance": 2.0}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("validation")
    train = emt_cells(20, seed=1, symbols=tuple(ELEMENTS))
    pot = linear_fit(tiny_potential(6, species=tuple(ELEMENTS)), train)
    pot.save(tmp / "potential.mtp")
    ActiveSet.from_training(pot, train, mode="neighborhood").save(tmp / "state.als.npz")
    write(tmp / "test.extxyz", emt_cells(3, seed=7, symbols=tuple(ELEMENTS)))
    config = validate_config({
        "elements": ELEMENTS, "phases": {"CuAu": {"bulk": {"name": "Cu", "cubic": True}}},
        "reference": {"name": "emt"},
        "validation": {"energy_volume": False, "elastic": False, "md_force_frames": 3,
                       "scenarios": [{"name": "glass", "amorphous": BOX, "steps": 40,
                                      "timestep": 1.0, "gamma_interval": 5,
                                      "reference": {"amorphous": {**BOX, "n_atoms": 8},
                                                    "steps": 30}}]}}, read_files=False)
    settings = Settings.from_config(config, checked=True)
    return tmp, settings


def test_validation_md_grades_without_stopping_and_records(setup):
    tmp, settings = setup
    run = settings.validation.runs()["glass"]
    lines = []
    record = validation_md(run, "mtp", {}, ELEMENTS, tmp / "mtp.extxyz", tmp / "mtp.json",
                           potential_file=tmp / "potential.mtp", state_file=tmp / "state.als.npz",
                           gamma_select=1e-9, gamma_break=1e-6, log=lines.append)
    # every graded frame is above the (tiny) gamma_break, yet the run goes its full length
    assert (record["steps"], record["reason"]) == (40, "finished")
    assert record["gamma"]["graded"] == 40 // 5 + 1
    assert record["gamma"]["above_break"] == record["gamma"]["above_select"] == 9
    assert record["gamma"]["max"] > 0 and record["atoms"] == 16
    assert record["density_g_cm3"]["first"] == pytest.approx(10.0, rel=1e-9)   # nvt: fixed
    assert json.loads((tmp / "mtp.json").read_text()) == record
    assert "9 of 9 graded frames at or above gamma_break 1e-06" in lines[-1]
    ref = validation_md(run, "reference", {}, ELEMENTS, tmp / "reference.extxyz",
                        tmp / "reference.json", reference=settings.reference, log=lines.append)
    assert (ref["atoms"], ref["steps"], ref["steps_requested"]) == (8, 30, 30)
    assert "gamma" not in ref
    assert len(read(tmp / "reference.extxyz", ":")) == 31      # every step of 30 // 50 = 1


def test_compare_and_summary_carry_the_new_keys(setup):
    tmp, settings = setup
    if not (tmp / "reference.json").exists():
        pytest.skip("needs the trajectories of the test above")
    val = settings.validation
    d = tmp / "glass"
    d.mkdir(exist_ok=True)
    result = compare(tmp / "mtp.extxyz", tmp / "reference.extxyz", val.rdf,
                     {"cutoffs": None, "bins": 90}, ELEMENTS, d / "similarity.json",
                     d / "rdf.png", d / "adf.png",
                     records={"mtp": tmp / "mtp.json", "reference": tmp / "reference.json"},
                     coordination_cutoffs=3.2)
    assert set(result["rdf"]) == {"Cu-Cu", "Cu-Au", "Au-Au", "total"}
    assert result["coordination_cutoffs"] == {"Cu-Cu": 3.2, "Cu-Au": 3.2, "Au-Au": 3.2}
    cn = result["structure"]["mtp"]["coordination"]
    assert set(cn) == {"Cu", "Au"}
    assert cn["Cu"]["total"] == pytest.approx(cn["Cu"]["Cu"] + cn["Cu"]["Au"]) and \
        cn["Cu"]["total"] > 0
    assert result["md"]["reference"]["atoms"] == 8
    own = relabel_own_md(tmp / "mtp.extxyz", tmp / "potential.mtp", settings.reference,
                         ELEMENTS, 3, d / "relabelled.extxyz", d / "own_md.json",
                         log=lambda m: None)
    relabelled = read(d / "relabelled.extxyz", ":")
    steps = [a.info["step"] for a in relabelled]
    assert len(relabelled) == own["frames"] == 3 and own["failed"] == 0
    assert steps[0] >= 8 and steps[-1] == 40           # after the first fifth, to the end
    assert own["rmse"] == own["errors"]["forces"]["rmse"] > 0
    summary = summarize([d / "similarity.json"], ["glass"], {"glass": {"phase": None}},
                        [d / "own_md.json"], tmp / "potential.mtp", tmp / "test.extxyz",
                        None, {}, ELEMENTS, val, tmp / "summary.json",
                        tmp / "parity.png", tmp / "ev.png", tmp / "verdicts.txt",
                        log=lambda m: None)
    s = summary["structure"]["glass"]
    assert s["frames_above_gamma_break"] == 9 and (s["atoms_mtp"], s["atoms_reference"]) == (16, 8)
    assert s["density_mtp_g_cm3"] == pytest.approx(10.0, rel=1e-9)
    assert s["coordination_mtp"] == cn and "coordination_reference" in s
    own = summary["scenarios"]["glass"]["own_md_force_rmse"]
    assert own["frames"] == 3 and own["ratio_to_test"] == pytest.approx(
        own["rmse"] / summary["errors"]["test"]["forces"]["rmse"])
    quantities = {v["quantity"]: v for v in summary["verdicts"]}
    gamma_row = next(v for q, v in quantities.items() if q.startswith("frames with gamma"))
    assert gamma_row["value"] == 9 and not gamma_row["pass"]
    assert quantities["MTP MD steps not run"]["value"] == 0 and \
        quantities["MTP MD steps not run"]["pass"]
    for pair in ("Cu-Cu", "Cu-Au", "Au-Au", "total"):
        assert f"RDF {pair} integrated |difference|" in quantities
        assert f"RDF {pair} first peak shift" in quantities
    assert quantities["force RMSE, own MD (3 frames)"]["reference"] == pytest.approx(
        summary["errors"]["test"]["forces"]["rmse"])
    assert "amorphous (glass)" in (tmp / "verdicts.txt").read_text()


def test_compare_without_a_reference_reports_the_mtp_structure(setup, tmp_path):
    tmp, settings = setup
    if not (tmp / "mtp.json").exists():
        pytest.skip("needs the trajectory of the first test")
    result = compare(tmp / "mtp.extxyz", None, settings.validation.rdf,
                     {"cutoffs": 3.0, "bins": 90}, ELEMENTS, tmp_path / "s.json",
                     tmp_path / "rdf.png", tmp_path / "adf.png", records={"mtp": tmp / "mtp.json"})
    assert "rdf" not in result and "error" not in result
    assert set(result["rdf_first_peaks_mtp"]) == {"Cu-Cu", "Cu-Au", "Au-Au", "total"}
    assert np.isfinite(result["structure"]["mtp"]["coordination"]["Au"]["total"])
    assert (tmp_path / "rdf.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("scenario, message", [
    ({"name": "g", "amorphous": {"composition": {"Zr": 1}, "density": 6.0}},
     r"'validation.scenarios\[g\].amorphous.composition': species \['Zr'\] are not in"),
    ({"name": "g", "amorphous": BOX, "reference": {"supercell": [2, 2, 2]}},
     r"'validation.scenarios\[g\].reference.supercell': an amorphous start has no supercell"),
    ({"name": "c", "phase": "CuAu", "reference": {"amorphous": BOX}},
     r"'validation.scenarios\[c\].reference.amorphous': the scenario starts from phase 'CuAu'"),
    ({"name": "g", "amorphous": BOX, "phase": "CuAu"},
     r"'validation.scenarios.0' = .* its start is exactly one of phase, amorphous"),
])
def test_bad_validation_scenarios_are_named(scenario, message):
    from scripts.mtpflow.settings import ConfigError
    with pytest.raises(ConfigError, match=message):
        validate_config({"elements": ELEMENTS, "reference": {"name": "emt"},
                         "phases": {"CuAu": {"bulk": {"name": "Cu", "cubic": True}}},
                         "validation": {"scenarios": [scenario]}}, read_files=False)


def test_the_hfo2_example_validation_starts_build():
    """Every validation start of config/examples/hfo2_tblite.yaml packs (a jammed random
    packing would stop the workflow at stage 5), at the issue's sizes and lengths."""
    import yaml
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "config" / "examples" / "hfo2_tblite.yaml"
    config = validate_config(yaml.safe_load(path.read_text()), read_files=False)
    runs = Settings.from_config(config, checked=True).validation.runs()
    sizes = {(name, engine): (len(run.start_structure(config["phases"], engine)),
                              run.steps_of(engine) * run.timestep)
             for name, run in runs.items() for engine in ("mtp", "reference")
             if engine == "mtp" or run.compared}
    assert sizes[("amorphous_300K", "mtp")] == (96, 100000.0)        # 0.1 ns
    assert sizes[("amorphous_3000K", "mtp")] == (96, 20000.0)        # 20 ps
    assert sizes[("amorphous_3000K", "reference")] == (48, 1000.0)   # 1 ps of xTB
    assert not runs["amorphous_300K"].compared
    assert config["validation"]["md_force_frames"] == 50


def test_gamma_only_reference_gets_energy_volume_and_elastic_cells_of_min_height(
        setup, tmp_path, monkeypatch):
    """A Γ-only reference (tblite, in the HfO2 run: E-V RMSE 620-930 meV/atom on 3- and
    12-atom cells) gets the phases' cells repeated to gamma_only_min_height for the E-V curve
    and the elastic constants; a k-point reference (0) the unit cell."""
    import dataclasses

    import scripts.mtpflow.validation as validation
    from mtplib.structures import cell_heights

    tmp, settings = setup
    if not (tmp / "reference.json").exists():
        pytest.skip("needs the trajectories of the first test")
    seen = {"ev": [], "elastic": []}

    def fake_ev(unit, calc):
        seen["ev"].append(len(unit))
        assert cell_heights(unit.cell.array, unit.pbc).min() >= seen["height"]
        return np.array([10.0, 11.0, 12.0]), np.array([-1.0, -1.1, -1.0])

    def fake_elastic(unit, calc):
        seen["elastic"].append(len(unit))
        return np.eye(6) * 100.0

    monkeypatch.setattr(validation, "energy_volume", fake_ev)
    monkeypatch.setattr(validation, "elastic_constants", fake_elastic)
    phases = {"Cu": {"bulk": {"name": "Cu"}}}          # the 1-atom fcc cell, 2.1 Å high
    checks = dataclasses.replace(settings.validation, energy_volume=True, elastic=True)
    for height, atoms in ((0.0, 1), (10.0, 125)):
        seen.update(ev=[], elastic=[], height=height)
        lines = []
        reference_crystal_checks(settings.reference, phases, ELEMENTS, checks,
                                 tmp_path / "checks.json", min_height=height, log=lines.append)
        summary = summarize([], [], {}, [], tmp / "potential.mtp", tmp / "test.extxyz",
                            tmp_path / "checks.json", phases, ELEMENTS, checks,
                            tmp_path / "summary.json", tmp_path / "parity.png",
                            tmp_path / "ev.png", tmp_path / "verdicts.txt", min_height=height,
                            log=lines.append)
        assert seen["ev"] == [atoms, atoms] and seen["elastic"] == [atoms, atoms]
        assert any("Cu 125 atoms" in line for line in lines) == (height > 0)
        assert summary["energy_volume"]["Cu"]["energy_rmse_meV_per_atom"] == 0.0
        assert summary["elastic"]["Cu"]["max_abs_difference_GPa"] == 0.0


def test_summary_compares_the_reference_checks_file_and_fails_a_failed_phase(
        setup, tmp_path, monkeypatch):
    """The summary reads the reference's E-V curve and C_ij from reference_crystal_checks'
    file: a reference curve 1 meV/atom above the MTP's gives an E-V RMSE of 1 meV/atom; a
    phase whose reference calculation failed, or no file at all, gets a failed verdict."""
    import dataclasses

    import scripts.mtpflow.validation as validation

    tmp, settings = setup
    if not (tmp / "reference.json").exists():
        pytest.skip("needs the trajectories of the first test")
    monkeypatch.setattr(validation, "energy_volume", lambda unit, calc: (
        np.array([10.0, 11.0, 12.0]), np.array([-1.0, -1.1, -1.0])))
    monkeypatch.setattr(validation, "elastic_constants", lambda unit, calc: np.eye(6) * 100.0)
    phases = {"Cu": {"bulk": {"name": "Cu"}}, "Au": {"bulk": {"name": "Au"}}}
    checks = dataclasses.replace(settings.validation, energy_volume=True, elastic=True)
    ref = {"energy_volume": {"Cu": {"volumes": [10.0, 11.0, 12.0],
                                    "energies": [-0.999, -1.099, -0.999]},
                             "Au": {"error": "CalculationFailed: SCF did not converge"}},
           "elastic": {"Cu": (np.eye(6) * 110.0).tolist(),
                       "Au": {"error": "CalculationFailed: SCF did not converge"}}}
    (tmp_path / "checks.json").write_text(json.dumps(ref))
    for checks_file in (tmp_path / "checks.json", None):
        summary = summarize([], [], {}, [], tmp / "potential.mtp", tmp / "test.extxyz",
                            checks_file, phases, ELEMENTS, checks, tmp_path / "summary.json",
                            tmp_path / "parity.png", tmp_path / "ev.png",
                            tmp_path / "verdicts.txt", log=lambda m: None)
        rows = {(v["phase"], v["quantity"]): v for v in summary["verdicts"]}
        assert not rows[("Au", "E-V RMSE")]["pass"] and not rows[("Au", "elastic C_ij")]["pass"]
        if checks_file:
            assert summary["energy_volume"]["Cu"]["energy_rmse_meV_per_atom"] == \
                pytest.approx(1.0)
            assert summary["elastic"]["Cu"]["max_abs_difference_GPa"] == pytest.approx(10.0)
            assert "SCF" in summary["energy_volume"]["Au"]["error"]
            assert rows[("Au", "E-V RMSE")]["note"] == rows[("Au", "elastic C_ij")]["note"] \
                == "CalculationFailed"          # the exception's type, as before the split
        else:
            assert not rows[("Cu", "E-V RMSE")]["pass"]


def test_validation_md_damped_start_runs_before_both_engines(setup):
    """equilibration: the MTP and the reference run both begin with the damped start, which
    counts in their steps and record."""
    from dataclasses import replace
    tmp, settings = setup
    run = replace(settings.validation.runs()["glass"], equilibration={"steps": 6, "friction": 0.1})
    mtp = validation_md(run, "mtp", {}, ELEMENTS, tmp / "eq_mtp.extxyz", tmp / "eq_mtp.json",
                        potential_file=tmp / "potential.mtp", state_file=tmp / "state.als.npz",
                        log=lambda *a: None)
    ref = validation_md(run, "reference", {}, ELEMENTS, tmp / "eq_ref.extxyz",
                        tmp / "eq_ref.json", reference=settings.reference, log=lambda *a: None)
    for record, steps in ((mtp, 40), (ref, 30)):
        assert record["steps"] == record["steps_requested"] == steps + 6
        assert record["equilibration_steps"] == 6 and record["reason"] == "finished"
    assert mtp["gamma"]["graded"] == 46 // 5 + 1

