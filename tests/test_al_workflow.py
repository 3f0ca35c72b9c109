"""Stage 4-5 of the workflow: the active-learning checkpoint loop, kill -9 and resume,
validation; and the stage logic (scenarios, convergence decision) as plain functions."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read

from mtplib.structures import amorphous_box, composition_counts
from scripts.mtpflow.active import ILL_CONDITIONED_HINT, decide, is_converged, record, select
from scripts.mtpflow.logs import tee_log
from test_report import check_report
from scripts.mtpflow.settings import Settings, validate_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "config" / "examples" / "cuau_tiny.yaml"


# ---- stage logic ---------------------------------------------------------------------------
def _settings(scenarios):
    phases = {"Cu": {"bulk": {"name": "Cu", "cubic": True}},
              "CuAu": {"bulk": {"name": "CuAu", "crystalstructure": "rocksalt", "a": 4.0}}}
    return Settings.from_config(validate_config(
        {"elements": ["Cu", "Au"], "phases": phases,
         "active_learning": {"scenarios": scenarios}}))


def test_scenarios_expand_over_phases_and_temperatures():
    al = _settings([
        {"name": "md", "start": {"phases": ["Cu", "CuAu"], "supercell": [2, 2, 2]},
         "temperatures": [300, 1200.5]},
        {"name": "liq", "start": {"amorphous": {"composition": {"Cu": 1}, "density": 8.0}},
         "temperatures": [1800]}]).active_learning
    runs = al.runs()
    assert list(runs) == ["md_Cu_300K", "md_Cu_1200p5K", "md_CuAu_300K", "md_CuAu_1200p5K",
                          "liq_1800K"]
    assert runs["md_CuAu_300K"].start == {"phase": "CuAu", "supercell": [2, 2, 2]}
    assert runs["md_Cu_1200p5K"].temperature == 1200.5
    # every default comes from the schema: the run carries them, the thresholds too
    assert (runs["liq_1800K"].steps, runs["liq_1800K"].interval) == (1000, 10)
    assert al.thresholds(runs["liq_1800K"]).max_forces_check == 50.0
    assert runs["liq_1800K"].start["amorphous"]["n_atoms"] == 32
    with pytest.raises(ValueError, match="'md_300K' occurs twice"):
        _settings([{"name": "md", "start": {"phase": "Cu"}, "temperatures": [300, 300]}]).\
            active_learning.runs()


def test_amorphous_box_density_composition_and_min_distance():
    atoms = amorphous_box({"Cu": 3, "Au": 1}, 11.0, n_atoms=32, seed=4, min_distance=2.0)
    assert composition_counts({"Cu": 3, "Au": 1}, 32) == {"Cu": 24, "Au": 8}
    assert atoms.get_chemical_formula() == "Au8Cu24"
    density = atoms.get_masses().sum() * 1.66053906660 / atoms.get_volume()
    assert density == pytest.approx(11.0, rel=1e-9)
    assert atoms.get_all_distances(mic=True)[np.triu_indices(32, 1)].min() >= 2.0
    again = amorphous_box({"Cu": 3, "Au": 1}, 11.0, n_atoms=32, seed=4, min_distance=2.0)
    np.testing.assert_array_equal(atoms.positions, again.positions)   # seeded
    with pytest.raises(ValueError, match="config key 'x.amorphous': could not place 32 atoms"):
        amorphous_box({"Cu": 1}, 30.0, n_atoms=32, min_distance=2.5, max_attempts=2000,
                      where="x.amorphous")


def _decide(tmp_path, runs, selected, retried=0):
    paths = []
    for k, run in enumerate(runs):
        p = tmp_path / f"run{k}.json"
        p.write_text(json.dumps({"scenario": f"s{k}", "steps_requested": 100, "message": "m",
                                 **run}))
        paths.append(p)
    (tmp_path / "sel.json").write_text(json.dumps(
        {"candidates": 3, "selected": selected, "retried": retried, "nothing_new": selected == 0}))
    (tmp_path / "err.json").write_text(json.dumps(
        {"training_set_size": 10, "labels_added": selected, "refit": "warm",
         "test": {"forces": {"rmse": 0.1}}}))
    (tmp_path / "failed.extxyz").write_text("")
    out = tmp_path / "iteration.json"
    rec = decide(paths, tmp_path / "sel.json", tmp_path / "failed.extxyz", tmp_path / "err.json",
                 10.0, 3, out, log=lambda m: None)
    assert is_converged(out) == rec["converged"]
    return rec


def test_convergence_decision(tmp_path):
    done = {"steps": 100, "reason": "finished", "max_gamma": 3.0}
    broke = {"steps": 40, "reason": "extrapolation", "max_gamma": 12.0}
    rec = _decide(tmp_path, [done, done], selected=2)
    assert (rec["converged"], rec["reason"]) == (True, "all_finished")
    assert rec["steps_survived"] == {"s0": 100, "s1": 100} and rec["force_rmse_test"] == 0.1
    rec = _decide(tmp_path, [done, broke], selected=2)
    assert (rec["converged"], rec["reason"]) == (False, "extrapolation")
    assert "s1: m" in rec["message"]
    rec = _decide(tmp_path, [done, broke], selected=0)
    assert (rec["converged"], rec["reason"]) == (True, "nothing_new")
    assert ILL_CONDITIONED_HINT in rec["message"] and "ill-conditioned" in rec["message"]
    rec = _decide(tmp_path, [broke], selected=0, retried=1)    # a retry is still new work
    assert rec["converged"] is False


def test_record_columns_carry_units_and_no_empty_valid_columns(tmp_path):
    done = {"steps": 100, "reason": "finished", "max_gamma": 3.0}
    _decide(tmp_path, [done, done], selected=2)
    record([tmp_path / "iteration.json"], tmp_path / "record.csv", tmp_path / "curve.png",
           log=lambda m: None)
    header, row = (tmp_path / "record.csv").read_text().splitlines()
    columns = header.split(",")
    assert "force_rmse_test_eV_per_A" in columns and "energy_rmse_test_meV_per_atom" in columns
    assert not [c for c in columns if "valid" in c]
    assert dict(zip(columns, row.split(",")))["force_rmse_test_eV_per_A"] == "0.1"


def test_min_dist_warnings_are_summed_up_in_one_line(tmp_path, capsys):
    log_file = tmp_path / "job.log"
    with tee_log(log_file, terminal=False) as log:
        log("md: 100 steps")
        for d in (1.993, 1.95, 1.99):
            warnings.warn(f"structure: atoms {d:.3f} Å apart, closer than min_dist = 2.0 Å, "
                          "where the potential is not trained")
        warnings.warn("another warning")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "Warning" not in out[0]
    assert out[0].startswith(f"{log_file}: 3 structure evaluation(s) had atoms closer than "
                             "mtp.min_dist = 2 Å (smallest 1.950 Å)")
    assert "`mtplib mindist`" in out[0]
    lines = log_file.read_text().splitlines()
    assert lines[0] == "md: 100 steps" and lines[2] == "python warning (1x): another warning"


def _write_selection(path, count):
    """`count` rattled Cu cells as an iteration's selection (phase, index, scenario)."""
    from ase.build import bulk
    from ase.io import write
    frames = []
    for k in range(count):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.rattle(0.05, seed=k)
        atoms.info.update(phase="md_300K", index=k, scenario="md_300K")
        frames.append(atoms)
    write(path, frames)


def test_failed_labels_go_to_failed_and_are_retried_once(tmp_path):
    """al_label reuses the stage-2 labelling (failures listed with their reason); the next
    iteration's selection retries them once, then gives up."""
    from ase.io import read, write

    _write_selection(tmp_path / "selected.extxyz", 4)
    config = validate_config({"elements": ["Cu"], "phases": {"Cu": {"bulk": {"name": "Cu"}}},
                              "reference": {"name": "mtplib.labeling.testing:FailingEMT",
                                            "kwargs": {"every": 2}, "retries": 1}})
    subprocess.run([sys.executable, str(ROOT / "scripts" / "label.py"), "--structures",
                    str(tmp_path / "selected.extxyz"), "--reference",
                    json.dumps(config["reference"]), "--output", str(tmp_path / "labelled.extxyz"),
                    "--failed", str(tmp_path / "failed.extxyz")], check=True, cwd=tmp_path)
    labelled = read(tmp_path / "labelled.extxyz", ":")
    failed = read(tmp_path / "failed.extxyz", ":")
    assert [a.info["index"] for a in labelled] == [1, 3]
    assert [a.info["index"] for a in failed] == [0, 2]
    assert all("SCF did not converge" in a.info["failure_reason"] for a in failed)
    for a in failed:
        a.info["al_label_rounds"] = 1
    failed[1].info["al_label_rounds"] = 2          # already retried once: given up
    write(tmp_path / "failed.extxyz", failed)
    config["active_learning"]["max_select"] = 5
    al = Settings.from_config(config).active_learning
    (tmp_path / "none.extxyz").write_text("")
    summary = select(None, None, [tmp_path / "none.extxyz"], tmp_path / "failed.extxyz", al,
                     ["Cu"], 4, tmp_path / "cand.extxyz", tmp_path / "sel.extxyz",
                     tmp_path / "sel.json", log=lambda m: None)
    assert (summary["selected"], summary["retried"], summary["dropped_failures"]) == (0, 1, 1)
    retried = read(tmp_path / "sel.extxyz", ":")
    assert len(retried) == 1 and retried[0].info["al_label_rounds"] == 2
    assert retried[0].info["al_iteration"] == 4 and "failure_reason" not in retried[0].info
    np.testing.assert_allclose(retried[0].positions, failed[0].positions)


def test_selection_labelled_in_parts_joins_to_the_single_job(tmp_path):
    """al_label_part: --part k --parts n labels the k-th of n equal consecutive parts; the
    parts joined in order (rule al_label) are the one job's labels."""
    from ase.io import read

    _write_selection(tmp_path / "selected.extxyz", 5)
    reference = json.dumps(validate_config({"elements": ["Cu"], "phases": {
        "Cu": {"bulk": {"name": "Cu"}}}})["reference"])

    def label(out, *part):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "label.py"), "--structures",
                        str(tmp_path / "selected.extxyz"), *part, "--reference", reference,
                        "--output", str(tmp_path / f"{out}.extxyz"),
                        "--failed", str(tmp_path / f"{out}.failed.extxyz")],
                       check=True, cwd=tmp_path, capture_output=True)
    label("all")
    for k in range(3):
        label(f"part_{k}", "--part", str(k), "--parts", "3")
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "label.py"), "--structures",
                          str(tmp_path / "selected.extxyz"), "--part", "3", "--parts", "3",
                          "--reference", reference, "--output", str(tmp_path / "x.extxyz"),
                          "--failed", str(tmp_path / "x.failed.extxyz")],
                         cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2 and "--part 3 is not one of the 3 parts" in bad.stderr
    parts = [read(tmp_path / f"part_{k}.extxyz", ":") for k in range(3)]
    assert [[a.info["index"] for a in part] for part in parts] == [[0], [1, 2], [3, 4]]
    single = read(tmp_path / "all.extxyz", ":")
    joined = [a for part in parts for a in part]
    # (a calculator reused from one structure to the next labels to round-off alike)
    for a, b in zip(joined, single, strict=True):
        assert a.info["index"] == b.info["index"] and (a.positions == b.positions).all()
        np.testing.assert_allclose(a.get_potential_energy(), b.get_potential_energy(), rtol=1e-12)
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), rtol=1e-9, atol=1e-12)


# ---- the workflow --------------------------------------------------------------------------
def _env():
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _cmd(workdir, configfile, *args):
    return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
            "--directory", str(workdir), "--configfile", str(configfile), "--cores", "2", *args]


def snakemake(workdir, configfile, *args, timeout=300):
    proc = subprocess.run(_cmd(workdir, configfile, *args), capture_output=True, text=True,
                          env=_env(), timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"snakemake {args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc.stdout + proc.stderr


def tiny_al_config(tmp_path):
    """cuau_tiny with level 6 and a short loop (at most 5 iterations) that goes on while a run
    has any candidate (quiet_tail over the whole 40 steps; configuration mode on 7 tiny
    structures: gamma is large). Whether and when the loop converges depends on the fitter's
    path, which the test below does not pin."""
    config = yaml.safe_load(TINY.read_text())
    config["mtp"] = {"level": 6, "radial_basis_size": 4, "max_dist": 4.5}
    config["fit"] = {"seeds": 2, "max_iter": 30}
    config["active_learning"] = {
        "max_iterations": 5, "gamma_select": 1.5, "gamma_break": 1400.0, "max_select": 2,
        "convergence": {"criterion": "quiet_tail", "last_steps": 40},
        "scenarios": [{"name": "cuau", "start": {"phase": "CuAu", "supercell": [2, 2, 1]},
                       "temperatures": [600], "steps": 40, "timestep": 2.0, "interval": 5}]}
    config["validation"] = {
        "scenarios": [{"name": "cuau_v", "phase": "CuAu", "supercell": [2, 2, 1],
                       "temperature": 300, "steps": 20, "timestep": 2.0}],
        "elastic": False}
    path = tmp_path / "al.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _snapshot(root, exclude):
    out = {}
    for p in sorted((root / "results").rglob("*")):
        if p.is_file() and not any(part in exclude for part in p.parts):
            out[str(p.relative_to(root))] = (p.stat().st_mtime_ns, p.read_bytes())
    return out


@pytest.mark.slow
def test_al_loop_kill_9_in_iteration_2_resume_converge_nothing_to_do(tmp_path):
    t0 = time.perf_counter()
    config = tiny_al_config(tmp_path)
    proc = subprocess.Popen(_cmd(tmp_path, config), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env(), start_new_session=True)
    it2 = tmp_path / "results" / "al" / "iter_002"
    try:
        deadline = time.time() + 240
        while not (it2 / "md").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before iteration 2 started"
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)     # snakemake and its jobs, mid iteration 2
        proc.wait()
    finished = _snapshot(tmp_path, exclude={"iter_002", "iter_003", "final",
                                            "validation", "record.csv"})
    assert "results/al/iter_001/iteration.json" in finished
    assert "results/al/iter_001/potential.mtp" in finished
    assert not (it2 / "iteration.json").exists()

    snakemake(tmp_path, config, "--unlock")
    log = snakemake(tmp_path, config, "--rerun-incomplete")
    assert _snapshot(tmp_path, exclude=set()).items() >= finished.items(), \
        "a finished file was rewritten by the resume"
    for rule in ("al_start", "fit_seed", "label_chunk"):
        assert f"rule {rule}:" not in log
    al = tmp_path / "results" / "al"
    summaries = [json.loads(p.read_text()) for p in sorted(al.glob("iter_*/iteration.json"))]
    n = len(summaries)
    assert n >= 3, "iteration 2, killed, was not completed by the resume"
    assert [s["iteration"] for s in summaries] == list(range(n))
    assert not any(s["converged"] for s in summaries[:-1])
    for s in summaries:       # an iteration that did not converge had an MD stopped by gamma
        assert s["converged"] or s["reason"] == "extrapolation"
    status = json.loads((al / "failures.json").read_text())["status"]
    converged = summaries[-1]["converged"]
    if converged:
        assert summaries[-1]["reason"] == "quiet_tail"
        assert summaries[-1]["steps_survived"] == {"cuau_600K": 40}
        assert status.startswith(f"converged at iteration {n - 1}")
    else:
        assert n == 5 and status.startswith("NOT converged after 5 iteration(s)")
    assert not (al / f"iter_{n:03d}").exists()
    rows = (al / "record.csv").read_text().splitlines()
    assert len(rows) == n + 1 and rows[0].startswith("iteration,converged,reason,training_set_size")
    sizes = [s["training_set_size"] for s in summaries]
    # 7 labelled in stage 2, 1 held out as the test set (never trained on)
    assert sizes[0] == 6 + summaries[0]["labels_added"] and sizes == sorted(sizes)
    assert (al / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    # the final fit trains on the last iteration's data; validation compares RDFs
    assert len(read(al / f"iter_{n - 1:03d}" / "train.extxyz", ":")) == sizes[-1]
    assert (tmp_path / "results" / "final" / "potential.mtp").exists()
    summary = json.loads((tmp_path / "results" / "validation" / "summary.json").read_text())
    rdf = summary["scenarios"]["cuau_v"]["rdf"]
    assert set(rdf) == {"Cu-Cu", "Cu-Au", "Au-Au", "total"}
    assert 0.0 <= summary["scenarios"]["cuau_v"]["rdf_integrated_absolute_difference"] < 1.0
    assert summary["errors"]["test"]["forces"]["rmse"] < 0.5

    again = snakemake(tmp_path, config, "-n")
    assert "Nothing to be done" in again, again[-2000:]
    if not converged:         # more iterations would be new work
        return
    # a key no finished job uses (max_iterations) changes nothing that is done
    more = yaml.safe_load(config.read_text())
    more["active_learning"]["max_iterations"] = 7
    (tmp_path / "more.yaml").write_text(yaml.safe_dump(more))
    again = snakemake(tmp_path, tmp_path / "more.yaml", "-n")
    assert "Nothing to be done" in again, again[-2000:]
    print(f"tiny AL loop with kill -9 and resume: {time.perf_counter() - t0:.1f} s")


@pytest.mark.slow
def test_al_lint_and_dry_run_default_config(tmp_path):
    lint = subprocess.run(_cmd(tmp_path, ROOT / "config" / "config.yaml", "--lint"),
                          capture_output=True, text=True, env=_env())
    assert "Congratulations, your workflow is in a good condition!" in lint.stdout + lint.stderr
    dry = snakemake(tmp_path, ROOT / "config" / "config.yaml", "-n")
    for rule, count in (("al_md", 15), ("al_iteration", 1), ("validate_md", 2),
                        ("final_seed", 2), ("validate_reference_checks", 1)):
        assert re.search(rf"^{rule} +{count}$", dry, re.MULTILINE), dry


def test_amorphous_box_with_pair_distances():
    """Per-pair smallest distances (e.g. HfO2's Hf-Hf much longer than O-O) hold in the box."""
    pairs = {"Hf-Hf": 2.8, "Hf-O": 1.85, "O-O": 2.2}
    atoms = amorphous_box({"Hf": 1, "O": 2}, 9.0, n_atoms=96, seed=0, min_distance=1.8,
                          pair_min_distance=pairs)
    d = atoms.get_all_distances(mic=True)
    symbols = np.array(atoms.get_chemical_symbols())
    for pair, dmin in pairs.items():
        a, b = pair.split("-")
        block = d[np.ix_(symbols == a, symbols == b)]
        block = block[block > 0]
        assert block.min() >= dmin, pair
    with pytest.raises(ValueError, match="'x.pair_min_distance': 'Hf-N' is not a pair"):
        amorphous_box({"Hf": 1, "O": 2}, 9.0, n_atoms=12, pair_min_distance={"Hf-N": 2.0},
                      where="x")


def test_quiet_jobs_show_periodic_progress_lines(tmp_path, capsys):
    from scripts.mtpflow.logs import every_nth
    with tee_log(tmp_path / "md.log", terminal=False, progress=every_nth("step", 250)) as log:
        for step in range(0, 1001, 100):
            log(f"cu3au_300K: step {step:7d}  gamma 1.2")
        log("iter   50  loss 1e-4")
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[4] for line in out] == ["0", "500", "1000"]
    assert out[1] == f"progress: {tmp_path / 'md.log'}: cu3au_300K: step     500  gamma 1.2"
    assert len((tmp_path / "md.log").read_text().splitlines()) == 12
    assert every_nth("iter", 25)("iter   50  loss 1e-4")


@pytest.mark.slow
def test_console_has_no_python_warnings_and_ends_with_the_verdicts(tmp_path):
    """The whole workflow on a tiny config: no 'Warning' line on the console, the verdict
    table in the last lines, exit 0 although a verdict fails; fail_on_verdict makes it fatal.
    The same held-out test set (1 of the 7 stage-2 labels) in every stage's errors."""
    config_file = tiny_al_config(tmp_path)
    config = yaml.safe_load(config_file.read_text())
    config["active_learning"]["max_iterations"] = 1
    config["validation"]["tolerances"] = {"rdf_difference": 1e-9}     # a verdict that fails
    config_file.write_text(yaml.safe_dump(config))
    out = snakemake(tmp_path, config_file, timeout=900)
    assert [line for line in out.splitlines() if "Warning" in line] == []
    tail = out[out.rindex("Validation verdicts"):]
    assert "CuAu (cuau_v)  RDF integrated |difference|" in tail and "FAIL" in tail
    failed_line = next(line for line in tail.splitlines() if "verdicts pass; FAILED:" in line)
    assert "CuAu (cuau_v) RDF integrated |difference|" in failed_line, tail
    res = tmp_path / "results"
    summary = json.loads((res / "validation" / "summary.json").read_text())
    assert summary["verdicts_failed"] >= 1
    assert {v["quantity"] for v in summary["verdicts"]} >= {"E-V RMSE",
                                                             "RDF integrated |difference|"}
    n_test = summary["errors"]["test"]["forces"]["n_configs"]
    for errors in ("fit/errors.json", "final/errors.json", "al/iter_000/errors.json"):
        assert json.loads((res / errors).read_text())["test"]["forces"]["n_configs"] == n_test == 1
    assert "Verdicts" in (res / "report" / "summary.rst").read_text()
    dom = check_report(tmp_path, config_file, tmp_path / "report.html", env=_env())
    assert dom is None or "FAIL" in dom

    config["validation"]["fail_on_verdict"] = True
    config_file.write_text(yaml.safe_dump(config))
    proc = subprocess.run(_cmd(tmp_path, config_file), capture_output=True, text=True,
                          env=_env(), timeout=600)
    assert proc.returncode != 0
    assert "validation.fail_on_verdict is true and" in proc.stderr

    # the final fit's 80/20 split: a seeded part of everything labelled joins stage 2's
    # held-out set; and its own stopping tolerance (final_tol ~ 0: to fit.max_iter); only
    # the final fit and validation run again
    config["validation"]["fail_on_verdict"] = False
    config["active_learning"]["final_test_fraction"] = 0.3
    config["active_learning"]["final_tol"] = 1e-12
    config_file.write_text(yaml.safe_dump(config))
    out = snakemake(tmp_path, config_file, timeout=900)
    assert "rule al_refit:" not in out and "rule final_split:" in out
    max_iter = config["fit"]["max_iter"]
    for log in (tmp_path / "logs" / "final").glob("seed_*.log"):
        assert f"stopped after {max_iter} iterations" in log.read_text(), log.read_text()
        assert "loss fell by less than" not in log.read_text()
    split = json.loads((res / "final" / "split.json").read_text())
    labelled = len(read(res / "al" / "iter_000" / "train.extxyz", ":"))
    assert split["labelled"] == labelled and split["held_out"] == round(0.3 * labelled) >= 1
    assert split["train"] + split["held_out"] == labelled and split["stage_test"] == n_test
    train, test = (read(res / "final" / f"{s}.extxyz", ":") for s in ("train", "test"))
    assert (len(train), len(test)) == (split["train"], n_test + split["held_out"])
    final_errors = json.loads((res / "final" / "errors.json").read_text())
    assert final_errors["test"]["forces"]["n_configs"] == len(test)
    summary = json.loads((res / "validation" / "summary.json").read_text())
    assert summary["errors"]["test"]["forces"]["n_configs"] == len(test)
    assert summary["errors"]["stage_test"]["forces"]["n_configs"] == n_test
    own = summary["structure"]["cuau_v"]["own_md_force_rmse"]
    assert own["ratio_to_test"] == pytest.approx(own["rmse"] / own["test_rmse"])
    assert own["ratio_to_stage_test"] == pytest.approx(own["rmse"] / own["stage_test_rmse"])


@pytest.mark.slow
def test_hull_target_from_a_config_edit(tmp_path):
    """hull.enabled: the pool, active learning on its relaxation, the reference's direct
    route and the hull, from stages 2-3 (a small Ag-Pd EMT pool)."""
    pytest.importorskip("icet", reason="icet not installed (pip install 'mtplib[hull]')")
    config = yaml.safe_load((ROOT / "config" / "examples" / "agpd_hull_emt.yaml").read_text())
    config["mtp"] = {"level": 8, "radial_basis_size": 6, "min_dist": 2.2, "max_dist": 4.5}
    config["fit"] = {"seeds": 1, "max_iter": 30}
    for phase in config["phases"].values():
        phase["displacements"]["supercells"] = [[1, 1, 1]]
    config["hull"].update(max_atoms=3, max_iterations=6, lattices=["fcc", "bcc"], gamma_break=5.0)
    config["validation"] = {"energy_volume": False, "elastic": False}
    path = tmp_path / "hull.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, path, "results/hull/hull.csv", "results/hull/hull.png", timeout=900)
    hull = tmp_path / "results" / "hull"
    rows = (hull / "hull.csv").read_text().splitlines()
    assert rows[0] == ("name,x_Pd,formation_energy_meV_per_atom,distance_to_hull_meV_per_atom,"
                       "on_hull")
    assert len(rows) == 21                     # the 20 candidates of fcc and bcc up to 3 atoms
    record = json.loads((hull / "record.json").read_text())
    assert record["initial_labels"] == 6 and record["labels"] > 0
    assert record["iterations"][0]["stopped"] > 0           # the untrained start extrapolates
    assert (hull / "hull.png").read_bytes()[:4] == b"\x89PNG"
    ends = [r for r in rows[1:] if r.split(",")[1] in ("0.000000", "1.000000")]
    assert ends and all(r.endswith(",1") for r in ends if float(r.split(",")[2]) == 0.0)
