"""phases.<name>.relax through the workflow (EMT, stage 1 only): the relaxed unit cell is at
the reference's zero stress within its space group, and stage 1 displaces it, not the cell
the config gives; a phase without relax is displaced as given."""
import json

import numpy as np
import yaml
from ase.calculators.emt import EMT
from ase.io import read
from ase.units import GPa

from mtplib.structures import build_phase, displace
from test_al_workflow import ROOT, snakemake


def test_stage_1_displaces_the_relaxed_unit_cell(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["phases"]["Cu3Au"]["relax"] = {"steps": 50, "fmax": 1e-3}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, path, "results/structures/Cu3Au.extxyz", "results/structures/Cu.extxyz")
    structures = tmp_path / "results" / "structures"
    unit = read(structures / "relaxed" / "Cu3Au.extxyz")
    record = json.loads((structures / "relaxed" / "Cu3Au.json").read_text())
    given = build_phase("Cu3Au", config["phases"]["Cu3Au"])
    assert record["converged"] and len(unit) == len(given) == 4
    assert unit.get_chemical_symbols() == given.get_chemical_symbols()
    # EMT's zero stress, still cubic, and not the given 3.75 Å
    unit.calc = EMT()
    assert np.abs(unit.get_stress()).max() / GPa < 0.05
    a, b, c, alpha, beta, gamma = unit.cell.cellpar()
    assert np.allclose([b, c, alpha, beta, gamma], [a, a, 90, 90, 90], atol=1e-6)
    assert abs(a - 3.75) > 0.02
    settings = config["phases"]["Cu3Au"]["displacements"]
    expected = displace(unit, "Cu3Au", **settings)
    frames = read(structures / "Cu3Au.extxyz", ":")
    assert len(frames) == len(expected)
    for got, want in zip(frames, expected):
        assert np.allclose(got.cell.array, want.cell.array, atol=1e-7)
        assert np.allclose(got.positions, want.positions, atol=1e-7)
    # Cu has no relax: no relaxed file, displaced from the given cell
    assert not (structures / "relaxed" / "Cu.extxyz").exists()
    cu = read(structures / "Cu.extxyz", ":")
    want = displace(build_phase("Cu", config["phases"]["Cu"]), "Cu",
                    **config["phases"]["Cu"]["displacements"])
    assert np.allclose(cu[0].positions, want[0].positions, atol=1e-7)


def test_a_reference_failure_stops_the_relaxation_with_one_line(tmp_path):
    """The reference fails on every call: relax_phase stops with one line naming the phase's
    relax key and the reference, and no traceback on the console."""
    import subprocess

    from test_al_workflow import _cmd, _env
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["phases"]["Cu3Au"]["relax"] = {"steps": 5}
    config["reference"] = {"name": "mtplib.labeling.testing:FailingEMT",
                           "kwargs": {"rate": 1.0}, "retries": 1}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(_cmd(tmp_path, path, "results/structures/Cu3Au.extxyz"),
                          capture_output=True, text=True, env=_env(), timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert ("logs/relax/Cu3Au.log: phases.Cu3Au.relax: the reference "
            "(mtplib.labeling.testing:FailingEMT) failed after 2 attempts") in out, out
    assert "Traceback" not in out, out
    assert not (tmp_path / "results" / "structures" / "relaxed" / "Cu3Au.extxyz").exists()
