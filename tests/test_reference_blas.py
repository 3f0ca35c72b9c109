"""reference.blas: an optimized BLAS in front of the reference BLAS that tblite's PyPI wheel
bundles; the same labels either way, one clear line for a bad setting."""

import ctypes.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mtplib.labeling.registry import BlasSettingError, bundled_reference_blas
from scripts.mtpflow.settings import ConfigError, check_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
OPENBLAS = ctypes.util.find_library("openblas")
needs_bundled_tblite = pytest.mark.skipif(
    not bundled_reference_blas("tblite.ase"),
    reason="needs tblite's PyPI wheel (which bundles the reference BLAS)")
needs_openblas = pytest.mark.skipif(OPENBLAS is None, reason="needs a system OpenBLAS")

# one process per BLAS (a process loads one): monoclinic HfO2's 12-atom cell, rattled
CHILD = """
import json, sys
import numpy as np
from ase.spacegroup import crystal
from mtplib.labeling.registry import blas_in_use, blas_note, calculator_factory
calc = calculator_factory("tblite", {"method": "GFN1-xTB", "verbosity": 0}, blas=sys.argv[1])()
atoms = crystal(["Hf", "O", "O"], [[0.2759, 0.0412, 0.2078], [0.0737, 0.3318, 0.3474],
                                   [0.4491, 0.7587, 0.4800]], spacegroup=14,
                cellpar=[5.117, 5.175, 5.291, 90, 99.22, 90])
atoms.positions += np.random.default_rng(0).normal(0, 0.05, atoms.positions.shape)
atoms.calc = calc
out = {"blas": blas_in_use(), "note": blas_note("tblite"), "energy": atoms.get_potential_energy(),
       "forces": atoms.get_forces().tolist(), "stress": atoms.get_stress().tolist(),
       "openblas_mapped": "/libopenblas" in open("/proc/self/maps").read()}
if out["blas"]:
    import ctypes
    out["threads"] = ctypes.CDLL(out["blas"]).openblas_get_num_threads()
print(json.dumps(out))
"""


def _label_in_child(blas, **env):
    proc = subprocess.run([sys.executable, "-c", CHILD, blas], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, check=True)
    return json.loads(proc.stdout.splitlines()[-1])


def test_bundled_reference_blas_is_found_only_in_a_wheel_that_ships_it():
    assert bundled_reference_blas("ase.calculators.emt") == []
    assert bundled_reference_blas("no_such_package.sub") == []
    for path in bundled_reference_blas("tblite.ase"):
        assert Path(path).name.startswith(("libblas", "liblapack"))


@needs_bundled_tblite
@needs_openblas
def test_openblas_in_front_gives_the_bundled_blas_labels_on_one_thread():
    bundled = _label_in_child("bundled")
    fast = _label_in_child("auto", OMP_NUM_THREADS="1")
    assert bundled["blas"] is None and not bundled["openblas_mapped"]
    assert fast["blas"] == OPENBLAS and fast["openblas_mapped"]
    assert fast["threads"] == 1
    assert fast["note"] == f"BLAS {OPENBLAS}" and "reference BLAS" in bundled["note"]
    # the same config gives the same labels, byte for byte
    assert _label_in_child("auto", OMP_NUM_THREADS="1") == fast
    # the same SCF on another BLAS: equal to round-off
    assert abs(fast["energy"] - bundled["energy"]) < 1e-7
    assert max(abs(a - b) for fa, fb in zip(fast["forces"], bundled["forces"])
               for a, b in zip(fa, fb)) < 1e-6
    assert max(abs(a - b) for a, b in zip(fast["stress"], bundled["stress"])) < 1e-7


@needs_bundled_tblite
@needs_openblas
def test_openblas_takes_the_jobs_threads():
    assert _label_in_child("auto", OMP_NUM_THREADS="2")["threads"] == 2


def test_a_blas_that_cannot_be_loaded_is_one_line_naming_the_key(tmp_path):
    from mtplib.labeling import registry
    not_a_library = tmp_path / "libnot.so"
    not_a_library.write_text("no ELF here")
    saved = dict(registry._BLAS_IN_USE)
    registry._BLAS_IN_USE.clear()
    try:
        with pytest.raises(BlasSettingError, match=r"config key 'reference.blas' = .*libnot.so"):
            registry.use_optimized_blas(str(not_a_library))
    finally:
        registry._BLAS_IN_USE.clear()
        registry._BLAS_IN_USE.update(saved)


def test_config_check_names_a_missing_blas_file(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "examples" / "cuau_tiny.yaml").read_text())
    config = validate_config(config)
    assert config["reference"]["blas"] == "auto"
    config["reference"]["blas"] = str(tmp_path / "libopenblas.so.0")
    with pytest.raises(ConfigError, match=r"config key 'reference.blas' = .*: no such file"):
        check_config(config, read_files=False)
    (tmp_path / "libopenblas.so.0").write_text("not a library")
    with pytest.raises(ConfigError, match=r"'reference.blas' = .*: not a shared library"):
        check_config(config, read_files=False)
    import _ctypes                      # a shared library where CPython does not build it in
    if getattr(_ctypes, "__file__", None):
        config["reference"]["blas"] = _ctypes.__file__
        check_config(config, read_files=False)
