"""The Snakemake workflow end to end: lint, dry runs, stages 1-3, failures, MPI, resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read, write

from mtplib.labeling.frames import read_complete_frames
from mtplib.labeling.label import partial_path
from mtplib.structures import displace
from scripts.mtpflow.settings import validate_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "config" / "examples" / "cuau_tiny.yaml"
CONFIGS = [ROOT / "config" / "config.yaml", *sorted((ROOT / "config" / "examples").glob("*.yaml"))]


def _env():
    env = dict(os.environ)
    # the interpreter running the tests provides python, snakemake and mpiexec
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def snakemake(workdir, configfile, *args, check=True):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(configfile), "--cores", "2", *args]
    # own process group: on a timeout, kill snakemake and every job it started
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} timed out:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    proc = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def _tiny(tmp_path, **reference):
    config = yaml.safe_load(TINY.read_text())
    config["reference"].update(reference)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


@pytest.mark.slow
@pytest.mark.parametrize("configfile", CONFIGS, ids=lambda p: p.name)
def test_lint_and_dry_run(tmp_path, configfile):
    lint = snakemake(tmp_path, configfile, "--lint", check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations, your workflow is in a good condition!" in lint.stdout + lint.stderr
    dry = snakemake(tmp_path, configfile, "-n", "--quiet", "rules")
    config = yaml.safe_load(configfile.read_text())
    out = dry.stdout + dry.stderr
    for rule in ("displace", "label_chunk", "isolated_energies", "merge_labels", "all"):
        assert rule in out, out
    n_phases = len(config["phases"])
    assert any(line.split()[:2] == ["displace", str(n_phases)] for line in out.splitlines()), out


def test_bad_config_stops_before_any_job(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["reference"]["chunk_sise"] = 2
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, path, check=False)
    assert proc.returncode != 0
    assert "'chunk_sise' was unexpected" in proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_tiny_end_to_end(tmp_path):
    t0 = time.perf_counter()
    snakemake(tmp_path, TINY)
    wall = time.perf_counter() - t0
    res = tmp_path / "results"
    cu = read(res / "structures" / "Cu.extxyz", index=":")
    cuau = read(res / "structures" / "CuAu.extxyz", index=":")
    assert [a.info["index"] for a in cu] == [0, 1, 2] and all(len(a) == 4 for a in cu)
    assert [len(a) for a in cuau] == [2, 2, 4, 4]
    assert [a.info["supercell"] for a in cuau] == ["1x1x1", "1x1x1", "1x1x2", "1x1x2"]
    assert {a.info["phase"] for a in cuau} == {"CuAu"}
    # chunks of 2: Cu -> [0, 1], [2]; CuAu -> [0, 1], [2, 3]
    chunk1 = read(res / "labels" / "Cu" / "chunk_1.extxyz", index=":")
    assert [a.info["index"] for a in chunk1] == [2]
    assert (res / "labels" / "Cu" / "chunk_1.failed.extxyz").read_text() == ""
    train = read(res / "labels" / "train.extxyz", index=":")
    held_out = read(res / "labels" / "test.extxyz", index=":")
    assert (len(train), len(held_out)) == (6, 1)     # the one held-out test set (0.2 of 7)
    train = train + held_out
    assert sorted((a.info["phase"], a.info["index"]) for a in train) == sorted(
        [("Cu", i) for i in range(3)] + [("CuAu", i) for i in range(4)])
    for labelled in train:
        fresh = labelled.copy()
        fresh.calc = EMT()
        assert labelled.get_potential_energy() == pytest.approx(fresh.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(labelled.get_forces(), fresh.get_forces(), atol=1e-6)
        np.testing.assert_allclose(labelled.get_stress(), fresh.get_stress(), atol=1e-6)
    assert (res / "labels" / "failed.extxyz").read_text() == ""
    summary = json.loads((res / "labels" / "summary.json").read_text())
    assert (summary["labelled"], summary["failed"], summary["retried"]) == (7, 0, 0)
    assert (summary["train"], summary["test"]) == (6, 1)
    assert summary["labelled_per_phase"] == {"Cu": 3, "CuAu": 4}
    isolated = json.loads((res / "labels" / "isolated.json").read_text())
    assert set(isolated["energies"]) == {"Cu", "Au"} and isolated["box"] == 12.0
    assert isolated["energies"]["Cu"] == pytest.approx(3.51, abs=0.05)
    assert "7 structures" not in (tmp_path / "logs" / "displace" / "Cu.log").read_text()
    assert "3 structures" in (tmp_path / "logs" / "displace" / "Cu.log").read_text()
    assert '"labelled": 2' in (tmp_path / "logs" / "label" / "CuAu" / "chunk_1.log").read_text()
    # stage 3: one potential per seed on the same split, the best, committee and plots
    import csv

    from mtplib import MTPotential
    fit = res / "fit"
    rows = list(csv.DictReader((fit / "seeds.csv").open()))
    assert sorted(int(r["seed"]) for r in rows) == [0, 1]
    values = [float(r["test.forces.rmse"]) for r in rows]
    assert values == sorted(values)
    best = MTPotential.load(fit / "best.mtp")
    assert best.species == ["Cu", "Au"] and best.is_trained
    seed_json = json.loads((fit / "seeds" / f"seed_{rows[0]['seed']}.json").read_text())
    test_part = held_out
    from mtplib.analysis.errors import error_metrics
    again_errors = error_metrics(test_part, best.evaluate_many(test_part))
    assert again_errors["forces"]["rmse"] == pytest.approx(seed_json["test"]["forces"]["rmse"], rel=1e-9)
    committee = json.loads((fit / "committee.json").read_text())
    assert committee["best_seed"] == int(rows[0]["seed"])
    for png in ("parity.png", "seed_errors.png"):
        assert (fit / png).read_bytes()[:4] == b"\x89PNG"
    again = snakemake(tmp_path, TINY, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    print(f"tiny stages 1-3: {wall:.1f} s")


@pytest.mark.slow
def test_failing_calculator_lists_failures_and_labels_the_rest(tmp_path):
    config = {
        "elements": ["Cu", "Au"],
        "phases": {"Cu": {"bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.61, "cubic": True},
                          "displacements": {"supercells": [[1, 1, 1]], "structures_per_supercell": 8}}},
        "reference": {"name": "mtplib.labeling.testing:FailingEMT", "kwargs": {"every": 4},
                      "chunk_size": 4, "retries": 1},
    }
    config["fit"] = {"seeds": 1, "max_iter": 20}
    config["mtp"] = {"level": 6, "radial_basis_size": 4}
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, path)
    # a potential is still produced from the six labelled structures
    from mtplib import MTPotential
    assert MTPotential.load(tmp_path / "results" / "fit" / "best.mtp").is_trained
    labels = tmp_path / "results" / "labels"
    summary = json.loads((labels / "summary.json").read_text())
    assert (summary["labelled"], summary["failed"], summary["retried"]) == (6, 2, 2)
    assert [f["index"] for f in summary["failures"]] == [0, 4]
    assert all("SCF did not converge" in f["reason"] for f in summary["failures"])
    failed = read(labels / "failed.extxyz", index=":")
    assert [a.info["index"] for a in failed] == [0, 4]
    assert all(a.info["label_attempts"] == 2 for a in failed)
    kept = read(labels / "train.extxyz", index=":") + read(labels / "test.extxyz", index=":")
    assert sorted(a.info["index"] for a in kept) == [1, 2, 3, 5, 6, 7]
    assert len(read(labels / "test.extxyz", index=":")) == 1       # round(0.2 * 6)
    assert "6 labelled, 2 failed, 2 retried" in proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.mpi
def test_label_chunk_runs_under_mpiexec_n2(tmp_path):
    path, _ = _tiny(tmp_path, name="mtplib.labeling.testing:MPISizeEMT", mpi_tasks=2)
    proc = snakemake(tmp_path, path, "results/labels/Cu/chunk_0.extxyz", "-p")
    assert "mpiexec -n 2 " in proc.stdout + proc.stderr
    assert "scripts/label.py" in proc.stdout + proc.stderr
    frames = read(tmp_path / "results" / "labels" / "Cu" / "chunk_0.extxyz", index=":")
    assert [a.info["index"] for a in frames] == [0, 1]  # rank 0 alone wrote: no duplicates
    for atoms in frames:
        assert atoms.info["mpi_comm_size"] == 2
        assert atoms.info["mpi_ranks_computed"] == 2
        assert atoms.info["mpi_pids_distinct"] == 2
    assert "2 MPI rank(s)" in (tmp_path / "logs" / "label" / "Cu" / "chunk_0.log").read_text()


def test_kill_9_midway_then_resume_recomputes_nothing_finished(tmp_path):
    unit = bulk("Cu", "fcc", a=3.61, cubic=True)
    structures = tmp_path / "Cu.extxyz"
    write(structures, displace(unit, "Cu", [[1, 1, 1]], 8, 0.05, 0.02, 0), format="extxyz")
    calls = tmp_path / "calls.txt"
    output, failed = tmp_path / "chunk_0.extxyz", tmp_path / "chunk_0.failed.extxyz"

    def command(delay):
        reference = validate_config({
            "elements": ["Cu"], "phases": {"Cu": {"bulk": {"name": "Cu"}}},
            "reference": {"name": "mtplib.labeling.testing:LoggingEMT", "chunk_size": 8,
                          "kwargs": {"log_file": str(calls), "delay": delay}, "retries": 0}})
        return [sys.executable, str(ROOT / "scripts" / "label.py"), "--structures",
                str(structures), "--chunk", "0", "--reference",
                json.dumps(reference["reference"]), "--output", str(output), "--failed", str(failed)]

    job = subprocess.Popen(command(0.5), env=_env(), cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(read_complete_frames(partial_path(output), repair=False)) < 3:
        assert time.time() < deadline and job.poll() is None, "labelling did not progress"
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert not output.exists()  # only the partial file is there
    finished = {a.info["index"] for a in read_complete_frames(partial_path(output))}
    assert 3 <= len(finished) < 8
    n_before = len(calls.read_text().split())

    subprocess.run(command(0.0), env=_env(), cwd=tmp_path, check=True, capture_output=True)
    rerun_calls = [int(x) for x in calls.read_text().split()[n_before:]]
    assert not finished & set(rerun_calls), f"recomputed finished {finished & set(rerun_calls)}"
    assert sorted(rerun_calls) == sorted(set(range(8)) - finished)
    assert [a.info["index"] for a in read(output, index=":")] == list(range(8))
    assert failed.read_text() == ""
    assert not partial_path(output).exists()
