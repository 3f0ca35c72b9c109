"""The report: the landing page's rst (scripts/mtpflow/report.py) from a run's files, and
the full `snakemake --report` rendered in headless Chromium (skipped without chromium)."""
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from docutils.core import publish_parts

from mtplib.analysis.verdicts import elastic_verdict, limit_verdict
from mtplib.potential import MTPotential
from scripts.mtpflow.report import summary_rst

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _run_files(tmp_path):
    pot = MTPotential.from_level(8, ["Cu", "Au"], 2.0, 5.0, 8)
    pot.save(tmp_path / "potential.mtp")
    err = {"forces": {"rmse": 0.0326, "mae": 0.02, "n_configs": 7},
           "energy_per_atom": {"rmse": 1.5, "mae": 1.0}, "stress": {"rmse": 0.2, "mae": 0.1}}
    (tmp_path / "errors.json").write_text(json.dumps({"train": err, "test": err}))
    (tmp_path / "labels.json").write_text(json.dumps({"labelled": 36, "failed": 0, "test": 7}))
    verdicts = [limit_verdict("Cu", "E-V RMSE", 3.2, 10.0, "meV/atom"),
                elastic_verdict("Au", [[86.0] * 6] * 6, [[178.0] * 6] * 6, 0.15, 10.0)]
    (tmp_path / "validation.json").write_text(json.dumps({"verdicts": verdicts}))
    it = {"iteration": 0, "converged": True, "reason": "all_finished", "training_set_size": 39,
          "labels_added": 10, "labels_failed": 0, "steps_survived": {"cu_md_600K": 1000},
          "steps_requested": {"cu_md_600K": 1000}, "max_gamma": 1.7, "force_rmse_test": 0.03}
    (tmp_path / "iteration.json").write_text(json.dumps(it))
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return config, [tmp_path / n for n in ("potential.mtp", "errors.json")], tmp_path


def test_summary_page_has_potential_verdicts_errors_and_record(tmp_path):
    config, (pot, errors), d = _run_files(tmp_path)
    text = summary_rst(config, pot, errors, [d / "iteration.json"], d / "labels.json",
                       d / "validation.json")
    html = publish_parts(text + "\n.. _Workflow: #\n.. _Statistics: #\n",
                         writer="html", settings_overrides={"report_level": 2,
                                                                 "halt_level": 2})["body"]
    assert "level 8, species Cu, Au" in text and "75 parameters" in text
    assert "<strong>1 of 2 pass</strong>" in html and "<strong>FAIL</strong>" in html
    assert "E-V RMSE" in html and "3.2 meV/atom" in html and "<li>" not in html.split("Plots")[0]
    assert "forces (eV/Å)" in html and "0.0326 / 0.02" in html
    assert "<td>cu_md_600K</td>" in html and "<td>1000/1000</td>" in html
    assert "converged at iteration 0" in html


def test_summary_page_has_the_validation_md_table(tmp_path):
    """Grade, densities under NPT and coordination numbers of every validation MD."""
    config, (pot, errors), d = _run_files(tmp_path)
    validation = json.loads((d / "validation.json").read_text())
    validation["structure"] = {"glass_3000K": {
        "atoms_mtp": 96, "atoms_reference": 48, "steps_mtp": 20000, "steps_reference": 1000,
        "density_mtp_g_cm3": 8.71, "density_reference_g_cm3": None, "max_gamma": 1.35,
        "frames_above_gamma_break": 0,
        "coordination_mtp": {"Hf": {"Hf": 0.0, "O": 6.9, "total": 6.9},
                             "O": {"Hf": 3.45, "O": 0.0, "total": 3.45}},
        "own_md_force_rmse": {"rmse": 0.31}}}
    (d / "validation.json").write_text(json.dumps(validation))
    text = summary_rst(config, pot, errors, [d / "iteration.json"], d / "labels.json",
                       d / "validation.json")
    html = publish_parts(text + "\n.. _Workflow: #\n.. _Statistics: #\n",
                         writer="html", settings_overrides={"report_level": 2,
                                                                 "halt_level": 2})["body"]
    assert "<td>glass_3000K</td>" in html and "<td>96 / 48</td>" in html
    assert "<td>8.71 / n/a</td>" in html and "<td>1.35</td>" in html and "<td>0</td>" in html
    assert "<td>Hf 6.90, O 3.45 / n/a</td>" in html and "<td>0.31</td>" in html


def chromium_dom(html_file, screenshot=None):
    """The DOM of `html_file` after its scripts ran in headless Chromium (Debian's
    `chromium`); a 1400x1000 screenshot too when `screenshot` is a path. Up to 300 s each:
    on a loaded shared machine the browser alone can take minutes."""
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}",
             "--virtual-time-budget=10000"]
    if screenshot:
        subprocess.run(flags + [f"--screenshot={screenshot}", "--window-size=1400,1000",
                                Path(html_file).resolve().as_uri()],
                       capture_output=True, timeout=300, check=True)
    return subprocess.run(flags + ["--dump-dom", Path(html_file).resolve().as_uri()],
                          capture_output=True, text=True, timeout=300, check=True).stdout


def check_report(run_dir, configfile, out, env=None):
    """`snakemake --report` of a finished run; in Chromium (when installed) its landing
    page shows the summary with the verdict table."""
    subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                    "--directory", str(run_dir), "--configfile", str(configfile),
                    "--report", str(out)], check=True, capture_output=True, text=True, env=env)
    if CHROMIUM is None:
        return None
    dom = chromium_dom(out, screenshot=Path(out).with_suffix(".png"))
    assert "Validation verdicts (tolerances: validation.tolerances)" in dom
    assert "Errors of the final potential" in dom and "forces (eV/Å)" in dom
    return dom
