"""Kernels compiled ahead of time for `mtplib evaluate` (mtplib/jit.py, `mtplib compile`)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from numba import typeof

from mtplib.jit import _match, _matches, _spec

# the command, run in a fresh interpreter that says whether it imported numba
EVALUATE = ("import sys; from mtplib.cli import main; code = main(sys.argv[1:]); "
            "print('numba imported:', 'numba' in sys.modules); sys.exit(code)")


def _specs(*values):
    return [_spec(typeof(v)) for v in values]


def test_argument_checks_follow_numba_types():
    a = np.zeros((4, 3))
    specs = _specs(a, 2.0, 3, True, (a[:, 0].copy(), np.zeros(2, np.int64)))
    assert _matches(specs, (np.ones((2, 3)), 1.5, 7, False, (np.ones(5), np.ones(1, np.int64))))
    assert _matches(specs, (a, np.float64(1.0), np.int64(1), np.bool_(True),
                            (np.ones(1), np.ones(1, np.int64))))
    # what a pycc export would read as the wrong thing: each is refused
    wrong = [(a[::2], 1.5, 7, False, (np.ones(5), np.ones(1, np.int64))),      # not contiguous
             (a.astype(np.float32), 1.5, 7, False, (np.ones(5), np.ones(1, np.int64))),
             (a.ravel(), 1.5, 7, False, (np.ones(5), np.ones(1, np.int64))),   # ndim
             (a, 1, 7, False, (np.ones(5), np.ones(1, np.int64))),             # int for float
             (a, 1.5, 7.0, False, (np.ones(5), np.ones(1, np.int64))),
             (a, 1.5, True, False, (np.ones(5), np.ones(1, np.int64))),        # bool for int
             (a, 1.5, 7, 0, (np.ones(5), np.ones(1, np.int64))),
             (a, 1.5, 7, False, (np.ones(5), np.ones(1, np.int32))),
             (a, 1.5, 7, False, (np.ones(5),)),
             (a, 1.5, 7)]
    for args in wrong:
        assert not _matches(specs, args), args
    readonly = np.ones((2, 3))
    readonly.flags.writeable = False
    assert not _match(specs[0], readonly)
    assert _match(_spec(typeof(readonly)), readonly) and not _match(_spec(typeof(readonly)), a)
    assert _spec(typeof(np.asfortranarray(np.ones((2, 3))))) is None     # not exported


def test_a_process_with_numba_kernels_keeps_them(monkeypatch):
    import mtplib.jit as jit
    import mtplib.kernels.mtp  # noqa: F401  (numba's kernels in this process)
    monkeypatch.setattr(jit, "_wanted", False)
    monkeypatch.delenv("MTPLIB_COMPILED", raising=False)
    jit.use_compiled_module()
    assert not jit._wanted
    with pytest.raises(RuntimeError, match="before any kernel module"):
        jit.record_calls()


def _evaluate(env, *argv):
    proc = subprocess.run([sys.executable, "-c", EVALUATE, "evaluate", *argv], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")),
                    reason="pycc needs a C compiler")
def test_compiled_evaluate_runs_without_numba_and_gives_the_same_bytes(tmp_path):
    from ase.build import bulk

    from mtplib.io import write_dataset
    from conftest import random_potential

    pot = random_potential(4, ["Cu", "Au"], seed=3)
    pot.save(tmp_path / "pot.mtp")
    rng = np.random.default_rng(0)
    images = []
    for n in range(5):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1 + n % 2))
        atoms.numbers[rng.random(len(atoms)) < 0.4] = 79
        atoms.rattle(0.1, seed=n)
        images.append(atoms)
    molecule = images[0][:3].copy()
    molecule.pbc, molecule.cell = False, None
    write_dataset(tmp_path / "data.cfg", images, species=["Cu", "Au"])
    write_dataset(tmp_path / "data.xyz", images + [molecule])
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("MTPLIB_COMPILED", None)
    compiled = subprocess.run([sys.executable, "-m", "mtplib", "compile"], env=env,
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    (module,) = (tmp_path / "cache").glob("mtplib-*/compiled/mtplib_kernels*")
    for name in ("data.cfg", "data.xyz"):
        suffix = name.split(".")[1]
        out = _evaluate(env, str(tmp_path / "pot.mtp"), str(tmp_path / name),
                        str(tmp_path / f"aot.{suffix}"))
        assert "numba imported: False" in out
        out = _evaluate(dict(env, MTPLIB_COMPILED="0"), str(tmp_path / "pot.mtp"),
                        str(tmp_path / name), str(tmp_path / f"jit.{suffix}"))
        assert "numba imported: True" in out
        assert (tmp_path / f"aot.{suffix}").read_bytes() == (tmp_path / f"jit.{suffix}").read_bytes()
    # a module built on another CPU is not loaded: numba's kernels, the same answer
    manifest = module.parent / "manifest.json"
    record = json.loads(manifest.read_text())
    manifest.write_text(json.dumps(dict(record, host="elsewhere:00000000")))
    out = _evaluate(env, str(tmp_path / "pot.mtp"), str(tmp_path / "data.cfg"),
                    str(tmp_path / "other.cfg"))
    assert "numba imported: True" in out
    assert (tmp_path / "other.cfg").read_bytes() == (tmp_path / "aot.cfg").read_bytes()
    manifest.write_text(json.dumps(record))
    # arguments no export takes (here: float32 positions reach no kernel, so the check is
    # exercised through a kernel called with an int array): numba compiles, same results
    code = ("import numpy as np, sys; from mtplib import jit; jit.use_compiled_module(); "
            "from mtplib.neighbors import _periodic_measure as f; "
            "c = np.eye(3) * 2.0; p = np.ones(3, bool); a = f(c, p); "
            "assert 'numba' not in sys.modules; b = f(np.eye(3, dtype=np.int64) * 2, p); "
            "assert 'numba' in sys.modules and a == b, (a, b); print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr
