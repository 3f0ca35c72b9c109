"""Numba's cache is versioned by mtplib's numba sources (mtplib/numba_cache.py)."""
import os
import subprocess
import sys

import numba

import mtplib
import mtplib.kernels  # noqa: F401  (isolates the numba cache)
from mtplib.numba_cache import PACKAGE_DIR, isolate_cache, numba_sources_digest


def _tree(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_digest_follows_every_numba_module_and_only_those(tmp_path):
    _tree(tmp_path, {"kernels/a.py": "import numba\n", "kernels/b.py": "from numba import njit\n",
                     "cli.py": "print('no kernels here')\n"})
    first = numba_sources_digest(tmp_path)
    (tmp_path / "cli.py").write_text("print('still none')\n")
    assert numba_sources_digest(tmp_path) == first
    # a change in a callee's file alone: numba would keep the caller's stale entry
    (tmp_path / "kernels/b.py").write_text("from numba import njit  # changed\n")
    second = numba_sources_digest(tmp_path)
    assert second != first
    (tmp_path / "kernels/b.py").rename(tmp_path / "kernels/c.py")   # same bytes, new module
    assert numba_sources_digest(tmp_path) not in (first, second)


def test_import_versions_the_cache_directory(tmp_path, monkeypatch):
    # this process: mtplib is imported, so numba already points at a versioned directory
    expected_name = "mtplib-" + numba_sources_digest(PACKAGE_DIR)
    assert os.path.basename(numba.config.CACHE_DIR) == expected_name
    assert os.environ["NUMBA_CACHE_DIR"] == numba.config.CACHE_DIR
    # a fresh interpreter with a user base directory, and its child, share one directory
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    code = ("import os, subprocess, sys, numba, mtplib.kernels; print(numba.config.CACHE_DIR); "
            "sys.stdout.flush(); subprocess.run([sys.executable, '-c', "
            "'import numba, mtplib.kernels; print(numba.config.CACHE_DIR)'], check=True)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(tmp_path / expected_name)] * 2
    # a directory left by another version in the environment is replaced, not nested
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mtplib-0123456789abcdef"))
    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)
    assert isolate_cache(force=True) == str(tmp_path / expected_name)
    assert numba.config.CACHE_DIR == str(tmp_path / expected_name)


def test_kernels_are_cached_in_the_versioned_directory():
    from ase.build import bulk

    from mtplib.training.optimize import initial_radial_coeffs
    pot = mtplib.MTPotential.from_level(2, ["Cu"], 2.0, 4.0)
    pot.radial_coeffs = initial_radial_coeffs(pot, 0)
    pot.species_coeffs = [0.0]
    pot.moment_coeffs = [1.0] * pot.alpha_scalar_moments
    pot.evaluate(bulk("Cu", cubic=True))
    index_files = [f for _, _, files in os.walk(numba.config.CACHE_DIR) for f in files
                   if f.endswith(".nbi")]
    assert index_files, f"no numba index files under {numba.config.CACHE_DIR}"
