"""Faults through the workflow: a hanging reference (reference.timeout), retrying the failed
stage-2 structures (target retry_failed), a flaky reference in the validation MD."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mtplib.labeling import read_frames

ROOT = Path(__file__).resolve().parents[1]


def snakemake(workdir, configfile, *args, check=True, timeout=300):
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(configfile), "--cores", "2", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} timed out:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{stdout[-3000:]}\n{stderr[-5000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _config(tmp_path, reference, **extra):
    config = {
        "elements": ["Cu", "Au"],
        "phases": {"Cu": {"bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.61, "cubic": True},
                          "displacements": {"supercells": [[1, 1, 1]], "structures_per_supercell": 6}}},
        "reference": {"chunk_size": 3, "retries": 1, **reference},
        "fit": {"seeds": 1, "max_iter": 20},
        "mtp": {"level": 4, "radial_basis_size": 4},
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_a_hanging_reference_times_out_through_the_workflow(tmp_path):
    path = _config(tmp_path, {"name": "mtplib.labeling.testing:HangingEMT",
                              "kwargs": {"hang": [4]}, "timeout": 2})
    snakemake(tmp_path, path, "merge_labels")
    summary = json.loads((tmp_path / "results" / "labels" / "summary.json").read_text())
    assert (summary["labelled"], summary["failed"]) == (5, 1)
    assert summary["failures"][0]["index"] == 4 and summary["failures"][0]["reason"] == "timeout"
    log = (tmp_path / "logs" / "label" / "Cu" / "chunk_1.log").read_text()
    assert "no result after 2 s (reference.timeout)" in log


@pytest.mark.slow
def test_retry_failed_relabels_only_the_failures(tmp_path):
    calls, fixed = tmp_path / "calls.log", tmp_path / "fixed"
    path = _config(tmp_path, {"name": "mtplib.labeling.testing:FixableEMT",
                              "kwargs": {"fixed": str(fixed), "log_file": str(calls), "every": 3}})
    snakemake(tmp_path, path, "merge_labels")
    labels = tmp_path / "results" / "labels"
    summary = json.loads((labels / "summary.json").read_text())
    assert (summary["labelled"], summary["failed"]) == (4, 2)
    calls.unlink()
    fixed.touch()                       # the user fixes the reference
    proc = snakemake(tmp_path, path, "retry_failed")
    assert sorted(int(i) for i in calls.read_text().split()) == [0, 3]   # only the failures
    assert '"labelled": 1' in proc.stdout + proc.stderr
    snakemake(tmp_path, path, "merge_labels")          # merge reruns on the updated chunks
    summary = json.loads((labels / "summary.json").read_text())
    assert (summary["labelled"], summary["failed"]) == (6, 0)
    merged = read_frames([labels / "train.extxyz", labels / "test.extxyz"])   # the held-out split
    assert sorted(int(a.info["index"]) for a in merged) == list(range(6))
    assert sorted(int(i) for i in calls.read_text().split()) == [0, 3]   # nothing relabelled
    again = snakemake(tmp_path, path, "retry_failed")
    assert "no failed structures to retry" in (tmp_path / "logs" / "label" / "retry_failed.log").read_text()
    assert again.returncode == 0


@pytest.mark.slow
def test_a_flaky_reference_in_validation_is_recorded_not_fatal(tmp_path):
    """A reference that fails 20 % of its calls: labelling retries and records; the reference
    validation MD retries, then records its failure in the summary; the workflow finishes."""
    path = _config(tmp_path, {"name": "mtplib.labeling.testing:FailingEMT",
                              "kwargs": {"rate": 0.2}, "retries": 1},
                   validation={"scenarios": [{"name": "cu_md", "phase": "Cu", "supercell": [2, 2, 2],
                                              "steps": 200, "timestep": 2.0}]})
    proc = snakemake(tmp_path, path, timeout=600)
    assert proc.returncode == 0
    res = tmp_path / "results" / "validation"
    similarity = json.loads((res / "cu_md" / "similarity.json").read_text())
    assert similarity["error"].startswith("reference failed after 2 attempt(s): RuntimeError: SCF")
    summary = json.loads((res / "summary.json").read_text())
    assert summary["scenarios"]["cu_md"] == similarity
    assert "errors" in summary and "elastic" in summary
    log = (tmp_path / "logs" / "validation" / "cu_md" / "reference.log").read_text()
    assert "reference: attempt 1 failed" in log
    assert "recorded in the validation summary" in log
    assert "cu_md: not compared, reference failed" in (tmp_path / "logs" / "validation" / "summary.log").read_text()
