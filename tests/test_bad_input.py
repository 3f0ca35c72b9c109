"""Bad input: every class of malformed config gets one line naming the key (and the file),
before any job runs; the Snakefile prints only that line."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from scripts.mtpflow.settings import ConfigError, Settings, validate_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "config" / "examples" / "cuau_tiny.yaml"


def _tiny():
    return yaml.safe_load(TINY.read_text())


def _cu_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _poscar(tmp_path):
    path = tmp_path / "POSCAR"
    write(path, bulk("Cu", "fcc", a=3.61, cubic=True), format="vasp")
    return path


def _labelled(tmp_path, energy):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((4, 3)))
    path = tmp_path / "valid.extxyz"
    write(path, atoms, format="extxyz")
    return str(path)


def _overlapping(tmp_path):
    from ase import Atoms
    path = tmp_path / "overlap.extxyz"
    write(path, Atoms("Cu2", positions=[[0, 0, 0], [0.1, 0, 0]], cell=[4, 4, 4], pbc=True))
    return str(path)


def _truncated_poscar(tmp_path):
    lines = _poscar(tmp_path).read_text().splitlines()
    return _cu_file(tmp_path, "POSCAR_truncated", "\n".join(lines[:9]) + "\n")


# (name, mutation of the tiny config (may write files into tmp_path), words the line must hold)
CASES = [
    ("unknown element", lambda c, t: c.update(elements=["Cu", "Au", "Xx"]), ["'elements'", "Xx"]),
    ("unknown validation phase",
     lambda c, t: c.setdefault("validation", {}).update(scenarios=[{"name": "v", "phase": "Ag"}]),
     ["validation.scenarios[v].phase", "'Ag'"]),
    ("unknown start.phases",
     lambda c, t: c.update(active_learning={"scenarios": [{"name": "md", "start": {"phases": ["Cu", "Ag"]}}]}),
     ["active_learning.scenarios[md].start.phases", "'Ag'"]),
    ("unknown start.phase",
     lambda c, t: c.update(active_learning={"scenarios": [{"name": "md", "start": {"phase": "Ag"}}]}),
     ["active_learning.scenarios[md].start.phase", "'Ag'"]),
    ("min_dist > max_dist", lambda c, t: c["mtp"].update(min_dist=5.0, max_dist=4.0),
     ["'mtp.min_dist'", "'mtp.max_dist'"]),
    ("gamma_select > gamma_break",
     lambda c, t: c.update(active_learning={"gamma_select": 12.0, "gamma_break": 10.0}),
     ["gamma_select", "gamma_break"]),
    ("missing valid_data", lambda c, t: c.update(validation={"valid_data": str(t / "nope.extxyz")}),
     ["validation.valid_data", "nope.extxyz"]),
    ("missing phase file", lambda c, t: c["phases"].update(X={"file": str(t / "X.cif")}),
     ["phases.X.file", "X.cif"]),
    ("missing start file",
     lambda c, t: c.update(active_learning={"scenarios": [{"name": "md", "start": {"file": str(t / "s.xyz")}}]}),
     ["active_learning.scenarios[md].start.file", "s.xyz"]),
    ("corrupt CIF",
     lambda c, t: c["phases"].update(X={"file": _cu_file(t, "bad.cif", "data_x\n_cell_length_a 3.6\nloop_\n_atom_site_label\n")}),
     ["phases.X.file", "bad.cif"]),
    ("truncated POSCAR", lambda c, t: c["phases"].update(X={"file": _truncated_poscar(t)}),
     ["phases.X.file", "POSCAR_truncated"]),
    ("empty structure file", lambda c, t: c["phases"].update(X={"file": _cu_file(t, "empty.xyz", "")}),
     ["phases.X.file", "empty.xyz"]),
    ("element EMT cannot do", lambda c, t: c.update(elements=["Cu", "Au", "Si"]),
     ["'elements'", "'emt'", "Si"]),
    ("crystalstructure fcx", lambda c, t: c["phases"]["Cu"]["bulk"].update(crystalstructure="fcx"),
     ["phases.Cu.bulk.crystalstructure", "'fcx'", "fcc"]),
    ("bulk arguments ase refuses", lambda c, t: c["phases"]["Cu"]["bulk"].update(crystalstructure="rocksalt"),
     ["phases.Cu.bulk"]),
    ("absurd rattle", lambda c, t: c["phases"]["Cu"]["displacements"].update(rattle=5.0),
     ["phases.Cu.displacements", "min_distance_fraction", "rattle"]),
    ("overlapping atoms", lambda c, t: c["phases"].update(X={"file": _overlapping(t)}),
     ["phases.X.file", "overlap.extxyz", "0.100"]),
    ("NaN in valid_data", lambda c, t: c.update(validation={"valid_data": _labelled(t, float("nan"))}),
     ["validation.valid_data", "valid.extxyz", "non-finite energy"]),
    ("unknown key", lambda c, t: c["reference"].update(timeuot=10),
     ["config key 'reference'", "'timeuot' was unexpected", "did you mean 'timeout'", "allowed keys"]),
    ("unknown top-level key", lambda c, t: c.update(validaton={}),
     ["'validaton' was unexpected", "did you mean 'validation'"]),
]


@pytest.mark.parametrize("mutate,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_config_mistake_is_one_line_naming_the_key(tmp_path, mutate, words):
    config = _tiny()
    mutate(config, tmp_path)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    for word in words:
        assert word in message, message


def test_a_valid_file_phase_and_valid_data_pass(tmp_path):
    config = _tiny()
    config["phases"]["X"] = {"file": str(_poscar(tmp_path))}
    config["validation"] = {"valid_data": _labelled(tmp_path, -1.0)}
    validate_config(config)


def test_no_scenarios_is_an_explicit_skip_not_a_convergence():
    settings = Settings.from_config(validate_config(_tiny()))
    assert settings.active_learning.max_iterations == 10 and not settings.active_learning.runs()
    assert "active learning skipped" in settings.active_learning.skipped
    assert "'active_learning.scenarios' is empty" in settings.active_learning.skipped
    config = _tiny()
    config["active_learning"] = {"max_iterations": 0}
    assert Settings.from_config(validate_config(config)).active_learning.skipped.startswith(
        "no iterations")


def _snakemake_dry(workdir, configfile):
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(configfile), "--cores", "1", "-n"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("case", ["unknown key", "corrupt CIF", "NaN in valid_data"])
def test_snakefile_prints_only_the_line_and_fails(tmp_path, case):
    mutate, words = {c[0]: c[1:] for c in CASES}[case]
    config = _tiny()
    mutate(config, tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = _snakemake_dry(tmp_path, path)
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode != 0
    assert len(out.splitlines()) == 1, out
    assert out.startswith(f"config error ({path}): "), out
    assert "Traceback" not in out and "File \"" not in out
    for word in words:
        assert word in out, out
    assert not (tmp_path / "results").exists()
