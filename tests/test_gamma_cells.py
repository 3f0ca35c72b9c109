"""A Γ-only reference given periodic cells thinner than reference.gamma_only_min_height is
warned about, one line per config key, before any job runs (no reference code is imported)."""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import yaml

from mtplib.labeling.registry import gamma_only, get_code
from mtplib.structures import amorphous_box, amorphous_box_length, cell_heights
from scripts.mtpflow.settings import ConfigWarning, validate_config

ROOT = Path(__file__).resolve().parents[1]
MONOCLINIC = {"crystal": {"symbols": ["Hf", "O", "O"],
                          "basis": [[0.2759, 0.0412, 0.2078], [0.0737, 0.3318, 0.3474],
                                    [0.4491, 0.7587, 0.4800]],
                          "spacegroup": 14, "cellpar": [5.117, 5.175, 5.291, 90, 99.22, 90]}}
HFO2_BOX = {"composition": {"Hf": 1, "O": 2}, "density": 9.0, "seed": 1, "min_distance": 1.8}


def _hfo2(supercell, name="tblite", **reference):
    return {"elements": ["Hf", "O"],
            "phases": {"monoclinic": {**MONOCLINIC, "displacements": {
                "supercells": [supercell], "structures_per_supercell": 1, "seed": 1}}},
            "reference": {"name": name, **reference}}


def _warnings(config):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate_config(config)
    return [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)]


def test_registry_says_which_codes_sample_only_gamma():
    assert get_code("tblite").samples_gamma_only({"method": "GFN1-xTB"})
    assert not gamma_only("emt") and not gamma_only("ase.calculators.lj:LennardJones")
    assert gamma_only("gpaw", {}) and gamma_only("gpaw", {"kpts": {"size": [1, 1, 1], "gamma": True}})
    assert not gamma_only("gpaw", {"kpts": {"density": 1.5, "gamma": False}})
    assert not gamma_only("gpaw", {"kpts": [3, 3, 3]})
    assert gamma_only("espresso", {}) and not gamma_only("espresso", {"kspacing": 0.07})
    assert not gamma_only("espresso", {"kpts": [1, 1, 1], "koffset": [1, 1, 1]})
    assert gamma_only("vasp", {}) and not gamma_only("vasp", {"kpts": None})


def test_cell_heights_are_volume_over_face_area():
    a, b, c, gamma = 4.0, 5.0, 6.0, np.radians(60.0)
    cell = [[a, 0, 0], [b * np.cos(gamma), b * np.sin(gamma), 0], [0, 0, c]]
    np.testing.assert_allclose(cell_heights(cell), [a * np.sin(gamma), b * np.sin(gamma), c])
    assert cell_heights(cell, [True, True, False])[2] == np.inf
    assert np.all(cell_heights(np.eye(3) * 7.0, False) == np.inf)
    box = amorphous_box({"Hf": 1, "O": 2}, 9.0, 48, seed=1, min_distance=1.8)
    assert amorphous_box_length({"Hf": 1, "O": 2}, 9.0, 48) == box.cell[0, 0]
    assert 8.4 < box.cell[0, 0] < 8.6


def test_tblite_12_atom_cell_warns_once_naming_the_key():
    messages = _warnings(_hfo2([1, 1, 1]))
    assert len(messages) == 1, messages
    message = messages[0]
    assert message.startswith("config key 'phases.monoclinic.displacements.supercells[0]' = "
                              "[1, 1, 1]: cells 5.1 Å across; tblite ('reference') samples only "
                              "the Gamma point"), message
    assert "use a supercell of [2, 2, 2] (>= 10 Å along every axis)" in message
    assert "'reference.gamma_only_min_height' to 0" in message and "\n" not in message


def test_tblite_2x2x2_cell_and_emt_do_not_warn():
    assert _warnings(_hfo2([2, 2, 2])) == []
    cu = {"elements": ["Cu"], "phases": {"Cu": {"bulk": {"name": "Cu", "cubic": True},
                                                "displacements": {"supercells": [[1, 1, 1]]}}}}
    assert _warnings({**cu, "reference": {"name": "emt"}}) == []
    assert len(_warnings({**cu, "reference": {"name": "tblite"}})) == 1


def test_small_amorphous_boxes_warn_and_the_threshold_key_silences():
    config = _hfo2([2, 2, 2])
    config["active_learning"] = {"scenarios": [
        {"name": "melt", "start": {"amorphous": {**HFO2_BOX, "n_atoms": 48}}}]}
    config["validation"] = {"scenarios": [
        {"name": "liquid", "amorphous": {**HFO2_BOX, "n_atoms": 96}, "temperature": 3000,
         "steps": 10, "reference": {"amorphous": {**HFO2_BOX, "n_atoms": 48}}}]}
    messages = _warnings(config)
    assert [m.split(":")[0] for m in messages] == [
        "config key 'active_learning.scenarios[melt].start.amorphous' = 48 atoms at 9 g/cm³",
        "config key 'validation.scenarios[liquid].reference.amorphous' = 48 atoms at 9 g/cm³"]
    assert all("cells 8.5 Å across" in m and "use n_atoms >= 78" in m for m in messages), messages
    config["reference"]["gamma_only_min_height"] = 8.0
    assert _warnings(config) == []
    assert _warnings(_hfo2([1, 1, 1], gamma_only_min_height=0)) == []


def test_gpaw_without_kpoints_warns_with_kpoints_not():
    config = _hfo2([1, 1, 1], "gpaw", kwargs={"kpts": {"density": 1.5}})
    assert _warnings(config) == []
    config["reference"]["kwargs"] = {"mode": "pw"}
    messages = _warnings(config)
    assert len(messages) == 1 and "gpaw ('reference', kpts = None)" in messages[0], messages


def test_fidelity_stages_each_gamma_only_stage_warns():
    config = _hfo2([1, 1, 1])
    del config["reference"]
    config["fidelity_stages"] = [
        {"name": "xtb", "reference": {"name": "tblite"}},
        {"name": "dft", "reference": {"name": "gpaw", "kwargs": {"kpts": [2, 2, 2]}}}]
    messages = _warnings(config)
    assert len(messages) == 1 and "tblite ('fidelity_stages[xtb].reference')" in messages[0]


def test_shipped_examples_warn_only_where_justified():
    found = {}
    for path in [ROOT / "config" / "config.yaml", *sorted((ROOT / "config" / "examples").glob("*.yaml"))]:
        found[path.name] = [m.split(":")[0] for m in _warnings(yaml.safe_load(path.read_text()))]
    # the 48-atom xTB melt of the validation (9.2 Å: the price of 1 ps of xTB MD on 2 cores)
    assert found.pop("hfo2_tblite.yaml") == [
        "config key 'validation.scenarios[amorphous_3000K].reference.amorphous' = 48 atoms at 7.2 g/cm³"]
    assert all(m == [] for m in found.values()), found


def test_snakefile_prints_the_warning_and_goes_on(tmp_path):
    config = _hfo2([1, 1, 1])
    config["validation"] = {"elastic": False, "energy_volume": False}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(tmp_path), "--configfile", str(path), "--cores", "1", "-n"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("WARNING")]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(
        f"WARNING ({path}): config key 'phases.monoclinic.displacements.supercells[0]'"), lines


def test_repeat_to_height_is_the_smallest_diagonal_supercell_of_that_height():
    from ase.build import bulk

    from mtplib.structures import repeat_to_height

    cell = bulk("Cu", "fcc", a=3.6)                      # heights 2.08 Å
    big = repeat_to_height(cell, 10.0)
    assert len(big) == 5 ** 3 and cell_heights(big.cell.array).min() >= 10.0
    assert cell_heights(repeat_to_height(cell, 8.0).cell.array).min() < 10.0
    wide = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 1))
    assert len(repeat_to_height(wide, 10.0)) == len(wide) * 3     # only the thin axis
    assert len(repeat_to_height(wide, 1.0)) == len(wide)
