"""Compile the numba kernels once, before the jobs that need them start side by side.

A fresh checkout has an empty numba cache. Without this step the parallel fit jobs of a
workflow each compile the same kernels at the same time. `compile_kernels` runs every kernel
the workflow uses (training
loss and gradients, serial and parallel evaluation, parameter rows for the active set and
the grade) on a tiny made-up structure of the config's species, so that the cache is warm
when the real jobs start; the rule runs alongside stages 1-2, which need no kernel.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from pathlib import Path

import numba
import numpy as np


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _toy_structures(elements, max_dist, n_atoms, count, seed=0):
    """`count` periodic boxes of `n_atoms` atoms cycling through `elements`, with made-up
    labels (zero energy, small random forces): only the array types matter here."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    side = round(n_atoms ** (1.0 / 3.0) + 0.5)
    spacing = 0.5 * max_dist
    grid = np.array([(i, j, k) for i in range(side) for j in range(side) for k in range(side)])
    images = []
    for _ in range(count):
        positions = grid[:n_atoms] * spacing + rng.normal(0.0, 0.05, (n_atoms, 3))
        symbols = [elements[i % len(elements)] for i in range(n_atoms)]
        atoms = Atoms(symbols, positions=positions, cell=[side * spacing] * 3, pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=rng.normal(0, 0.1, (n_atoms, 3)),
                                           stress=np.zeros(6))
        images.append(atoms)
    return images


def compile_kernels(pot, out_json=None, log=print):
    """Run every kernel once with the untrained potential `pot` (fit, evaluation on a small
    and a large cell, active set and grade in both selection modes); write what was done and
    how long it took."""
    from .active import ActiveSet
    from .neighbors import neighbor_csr_shortest
    from .potential import ATOMS_PER_THREAD
    from .training import fit

    wall, cpu = time.perf_counter(), _cpu_seconds()
    elements = list(pot.species)
    small = _toy_structures(elements, pot.max_dist, 2 * len(elements), 3)
    large = _toy_structures(elements, pot.max_dist, 2 * ATOMS_PER_THREAD + 8, 1)
    trained = fit(small, pot, seed=0, max_iter=2, log=None)
    trained.evaluate_many(small + large)                       # batch kernel (errors)
    for atoms in small + large:                                # serial and parallel (MD)
        trained.evaluate(atoms)
    neighbor_csr_shortest(large[0].positions, large[0].cell.array, large[0].pbc,
                          trained.max_dist, parallel=True)     # the blocked neighbour search
    for mode in ("configuration", "neighborhood"):
        with warnings.catch_warnings():      # a 3-structure active set is underdetermined
            warnings.simplefilter("ignore")
            aset = ActiveSet.from_training(trained, small, mode=mode, where="warm-up structures")
        aset.grade_many(small + large, where="warm-up structures")
    record = {"elements": elements, "basis_functions": int(pot.alpha_scalar_moments),
              "numba_cache_dir": numba.config.CACHE_DIR,
              "wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(_cpu_seconds() - cpu, 2)}
    log(f"numba kernels compiled or loaded from the cache in {record['wall_s']} s "
        f"({record['cpu_s']} CPU-s)")
    if out_json is not None:
        Path(out_json).write_text(json.dumps(record, indent=2) + "\n")
    return record


def compile_command_kernels(log=print):
    """`mtplib compile`: run `mtplib evaluate` on made-up files (`.cfg` and extxyz, periodic
    and free structures, with and without the repulsive core) while `mtplib.jit` records the
    kernels it calls, then compile those kernels ahead of time (`jit.build_compiled_module`).
    Call `jit.record_calls()` before any kernel module is imported."""
    import contextlib
    import io
    import tempfile

    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    from . import jit
    from .cli import cmd_evaluate
    from .io import write_dataset
    from .potential import MTPotential

    wall, cpu = time.perf_counter(), _cpu_seconds()
    periodic = _toy_structures(["Cu", "Au"], 5.0, 12, 2)
    free = Atoms("CuAuCu", positions=[[0, 0, 0], [2.4, 0, 0], [0, 2.5, 0.3]])
    free.calc = SinglePointCalculator(free, energy=0.0, forces=np.zeros((3, 3)))
    rng = np.random.default_rng(0)
    log("running mtplib evaluate on made-up files to find the kernels it needs")
    with tempfile.TemporaryDirectory(prefix="mtplib-compile-") as tmp:
        tmp = Path(tmp)
        for radial in ("RBChebyshev", "RBChebyshev_repuls"):
            pot = MTPotential.from_level(2, ["Cu", "Au"], 2.0, 5.0, 4, radial)
            pot.set_parameters(rng.normal(0.0, 0.1, pot.parameter_count))
            pot.save(tmp / "pot.mtp")
            for name, images in (("data.cfg", periodic), ("data.xyz", periodic + [free])):
                write_dataset(tmp / name, images, species=["Cu", "Au"])
                args = argparse.Namespace(potential=str(tmp / "pot.mtp"), data=str(tmp / name),
                                          out=str(tmp / ("out" + Path(name).suffix)), species=None)
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    cmd_evaluate(args)
        path = jit.build_compiled_module(log=log)
    log(f"{path}: compiled in {time.perf_counter() - wall:.1f} s ({_cpu_seconds() - cpu:.1f} CPU-s)")
    return path
