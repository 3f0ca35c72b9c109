"""config/examples/hfo2_tblite.yaml cut down to seconds per stage: every stage of the workflow
with tblite (GFN1-xTB) as the reference, from displaced crystals through active learning on
an amorphous box under NPT to validation (graded MTP MD of a fresh amorphous box, a smaller
xTB box, relabelled frames, RDF/ADF, coordination numbers and densities).

Skips when the `xtb` extra (tblite) is not installed."""
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ase.io import read

from test_al_workflow import _env

pytest.importorskip("tblite.ase", reason="tblite not installed (pip install 'mtplib[xtb]')")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "examples" / "hfo2_tblite.yaml"


def tiny_hfo2_config(tmp_path):
    """The shipped example's phases, reference and validation layout at a few atoms and steps."""
    config = yaml.safe_load(EXAMPLE.read_text())
    config["phases"] = {k: config["phases"][k] for k in ("cubic", "monoclinic")}
    config["phases"]["cubic"]["displacements"].update(supercells=[[1, 1, 1]],
                                                      structures_per_supercell=4)
    config["phases"]["monoclinic"]["displacements"].update(supercells=[[1, 1, 1]],
                                                           structures_per_supercell=3)
    # a few steps of the relaxation on the 12-atom cubic cell (the Γ-only supercell of 10 Å
    # would cost minutes), none for the monoclinic one
    config["phases"]["cubic"]["relax"] = {"steps": 3, "fmax": 0.05}
    config["phases"]["monoclinic"]["relax"] = {"steps": 0}
    config["reference"]["chunk_size"] = 4
    config["reference"]["gamma_only_min_height"] = 0.0
    config["mtp"] = {"level": 6, "radial_basis_size": 4, "min_dist": 1.7, "max_dist": 4.5}
    config["fit"] = {"weights": {"energy": 1.0, "forces": 0.01, "stress": 0.001}, "seeds": 1,
                     "max_iter": 40}
    box = {"composition": {"Hf": 1, "O": 2}, "density": 9.0, "n_atoms": 12, "seed": 0,
           "min_distance": 1.8, "pair_min_distance": {"Hf-Hf": 2.8, "Hf-O": 1.85, "O-O": 2.2}}
    al = config["active_learning"]
    al.update(max_iterations=2, max_select=2, convergence={"criterion": "quiet_tail",
                                                           "last_steps": 20})
    al["scenarios"] = [{"name": "amorphous", "start": {"amorphous": box}, "ensemble": "npt",
                        "temperatures": [3000], "steps": 20, "timestep": 1.0, "interval": 5}]
    config["validation"] = {
        "md_force_frames": 2, "energy_volume": False, "elastic": False,
        "scenarios": [{"name": "amorphous_3000K", "amorphous": {**box, "seed": 1},
                       "ensemble": "npt", "temperature": 3000, "steps": 20, "gamma_interval": 5,
                       "reference": {"amorphous": {**box, "seed": 1, "n_atoms": 6},
                                     "steps": 10}}],
        "rdf": {"r_max": 5.0, "bins": 100}, "adf": {"cutoffs": None, "bins": 90}}
    path = tmp_path / "hfo2_tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_tiny_hfo2_runs_every_stage_with_tblite(tmp_path):
    config = tiny_hfo2_config(tmp_path)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile",
                           str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                           "--configfile", str(config), "--cores", "1"],
                          capture_output=True, text=True, env=_env(), timeout=1200)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        pytest.fail(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    res = tmp_path / "results"
    # stage 1: the cubic cell relaxed by xTB within Fm-3m, the monoclinic one as given
    relaxed = json.loads((res / "structures" / "relaxed" / "cubic.json").read_text())
    assert relaxed["supercell"] == [1, 1, 1] and 1 <= relaxed["steps"] <= 3
    assert not (res / "structures" / "relaxed" / "monoclinic.extxyz").exists()
    # stage 2: 4 cubic + 3 monoclinic structures, all labelled by xTB
    labels = json.loads((res / "labels" / "summary.json").read_text())
    assert (labels["labelled"], labels["failed"]) == (7, 0)
    train, test = (read(res / "labels" / f"{s}.extxyz", ":") for s in ("train", "test"))
    assert len(train) + len(test) == 7 and len(test) >= 1
    assert all(a.get_stress().shape == (6,) for a in train)
    # stage 4: one row per iteration, the scenario's steps survived, the test errors
    al = res / "al"
    iterations = [json.loads(p.read_text()) for p in sorted(al.glob("iter_*/iteration.json"))]
    assert 1 <= len(iterations) <= 2
    with open(al / "record.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(iterations)
    assert {"iteration", "converged", "reason", "training_set_size", "labels_added",
            "max_gamma", "steps_amorphous_3000K", "force_rmse_test_eV_per_A"} <= set(rows[0])
    for row, it in zip(rows, iterations):
        assert int(row["steps_amorphous_3000K"]) == it["steps_survived"]["amorphous_3000K"] <= 20
        assert int(row["training_set_size"]) == it["training_set_size"]
    assert int(rows[0]["training_set_size"]) == len(train) + int(rows[0]["labels_added"])
    status = json.loads((al / "failures.json").read_text())["status"]
    assert status.startswith("converged at iteration" if iterations[-1]["converged"]
                             else "NOT converged after")
    # stage 5: the validation summary with the grade, structure and own-trajectory errors
    summary = json.loads((res / "validation" / "summary.json").read_text())
    assert {"scenarios", "errors", "verdicts", "verdicts_failed", "structure"} <= set(summary)
    scenario = summary["scenarios"]["amorphous_3000K"]
    assert set(scenario["rdf"]) == {"Hf-Hf", "Hf-O", "O-O", "total"}
    assert scenario["md"]["mtp"]["atoms"] == 12 and scenario["md"]["reference"]["atoms"] == 6
    assert scenario["md"]["reference"]["steps"] == 10
    assert scenario["own_md_force_rmse"]["frames"] == 2
    s = summary["structure"]["amorphous_3000K"]
    assert {"density_mtp_g_cm3", "density_reference_g_cm3", "coordination_mtp",
            "coordination_reference", "max_gamma", "frames_above_gamma_break",
            "adf_integrated_absolute_difference", "own_md_force_rmse"} <= set(s)
    assert set(s["coordination_mtp"]) == {"Hf", "O"} and s["coordination_mtp"]["Hf"]["O"] > 0
    assert 4.0 < s["density_mtp_g_cm3"] < 14.0          # NPT from 9.0 g/cm³
    quantities = {v["quantity"] for v in summary["verdicts"]}
    assert {"MTP MD steps not run", "RDF Hf-O integrated |difference|",
            "RDF Hf-O first peak shift", "force RMSE, own MD (2 frames)"} <= quantities
    assert any(q.startswith("frames with gamma ≥ gamma_break") for q in quantities)
    print(f"tiny HfO2 workflow with tblite on 1 core: {wall:.0f} s")
