#!/usr/bin/env python3
"""End to end: `mtplib evaluate POT DATA OUT` against MLIP-2's `mlp calc-efs`, as a user runs them.

Each command runs in a fresh process on a warm numba cache and with Python's bytecode cached
(one untimed run first; PYTHONDONTWRITEBYTECODE is unset for the commands); the
figure is its CPU time (user + system, the least of --repeats runs) per atom, which the
load of a shared machine inflates less than wall time. Cases: 1000 x 32-atom cells (the Cu
set of ../shared/bench/make_cu_emt.py), 64 x 500, 8 x 4000 and 1 x 32000 atoms (rattled fcc
Cu), all labelled, each in `.cfg` and in extxyz (in and out in the same format); a level-16
MTP, max_dist 5 Å. MLIP-2 reads `.cfg` only: its column is the same configurations in `.cfg`.
Numba runs on --threads threads (default 1, as the serial `mlp`). Each mtplib case runs twice:
on numba's kernels (MTPLIB_COMPILED=0) and on the kernels compiled ahead of time by
`mtplib compile` (run first; one thread, no numba import), when the checkout has that verb.

Also: the start-up of one 32-atom cell (wall time, median of --repeats; and CPU), split into
the import of the CLI and the first kernel call (numba's cache load), beside the floor that
any numba program pays (Python with numpy; a trivial cached numba function), and `mtplib grade`
against `mlp calc-grade` (1000 cells graded against the 200-cell training set) unless --no-grade.

    python benchmarks/bench_cli.py [--mlp PATH] [--data DIR] [--repeats 3] [--threads 1]
        [--repo DIR]          (another checkout's mtplib, e.g. to measure a baseline)
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_evaluate import bench_potential   # the same level-16 Cu MTP as the speed benchmark

ROOT = Path(__file__).resolve().parents[1]
MAKE = ROOT.parent / "shared" / "bench" / "make_cu_emt.py"
MLP = Path("/work/ext/mlip2/bin/mlp")
CASES = [(1000, 32), (64, 500), (8, 4000), (1, 32000)]
FORMATS = ("cfg", "extxyz")
# What any numba program pays before its first cached function returns: Python with numpy,
# and a trivial @njit(cache=True) function called once from a warm cache (numba's import and
# its type registries, which import scipy.linalg for numba's BLAS check).
FLOORS = [("python -c 'import numpy'", "import numpy\n"),
          ("a trivial cached numba function", "import numpy as np\nfrom numba import njit\n\n\n"
           "@njit(cache=True)\ndef f(x):\n    return x.sum()\n\n\nf(np.ones(3))\n")]


def load():
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run(cmd, env, cwd):
    """(wall s, CPU s of the child) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(cmd, env, cwd, repeats):
    """(least CPU s, median wall s) over repeats, after one untimed run."""
    run(cmd, env, cwd)
    times = [run(cmd, env, cwd) for _ in range(repeats)]
    return min(c for _, c in times), statistics.median(w for w, _ in times)


def make_data(work, cu_dir, pot):
    """The cases' files in both formats; the large cells labelled by the potential itself."""
    from ase.build import bulk
    from ase.io import read

    from mtplib.io import Frames, write_dataset, write_frames
    cu = read(Path(cu_dir) / "test.extxyz", ":")
    files = {}
    for n_cells, n_atoms in CASES:
        stem = work / f"cu_{n_cells}x{n_atoms}"
        files[(n_cells, n_atoms)] = stem
        if Path(f"{stem}.cfg").exists() and Path(f"{stem}.extxyz").exists():
            continue
        if n_atoms == 32:
            images = cu[:n_cells]
            write_dataset(f"{stem}.cfg", images, species=["Cu"])
            write_dataset(f"{stem}.extxyz", images)
            continue
        reps = {500: (5, 5, 5), 4000: (10, 10, 10), 32000: (20, 20, 20)}[n_atoms]
        rng = np.random.default_rng(n_atoms)
        images = []
        for _ in range(n_cells):
            atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)
            if n_atoms == 500:               # 500 = 4 * 125
                atoms = atoms[:500]
            atoms.rattle(0.08, seed=int(rng.integers(1 << 31)))
            images.append(atoms)
        assert all(len(a) == n_atoms for a in images), n_atoms
        frames = Frames.from_atoms(images)
        frames = frames.with_results(*pot.evaluate_frames(frames))
        write_frames(f"{stem}.cfg", frames, species=["Cu"])
        write_frames(f"{stem}.extxyz", frames)
    return files


def startup_split(env, cwd, pot, one, repeats):
    """Median wall and CPU of (import of mtplib.cli, first evaluation of one cell = cache load),
    through read_dataset and evaluate_many (in every version), and whether numba was imported."""
    code = ("import sys, time; t=time.perf_counter(); c=time.process_time(); import mtplib.cli\n"
            "try:\n from mtplib import jit; jit.use_compiled_module()\nexcept ImportError: pass\n"
            "from mtplib.io import read_dataset; from mtplib.potential import MTPotential; "
            "t1=time.perf_counter(); c1=time.process_time(); "
            f"p=MTPotential.load({str(pot)!r}); p.evaluate_many(read_dataset({str(one)!r}, p.species)); "
            "print(t1-t, c1-c, time.perf_counter()-t1, time.process_time()-c1, int('numba' in sys.modules))")
    rows = []
    for _ in range(repeats + 1):
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                             text=True, check=True).stdout.split()
        rows.append([float(x) for x in out])
    return [statistics.median(r[k] for r in rows[1:]) for k in range(4)] + [bool(rows[-1][4])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mlp", default=shutil.which("mlp") or (str(MLP) if MLP.exists() else None))
    ap.add_argument("--data", default="/work/ext/cu_bench",
                    help="directory of the Cu set (made by make_cu_emt.py when absent)")
    ap.add_argument("--work", help="directory for the benchmark files (default: a temporary one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repo", default=str(ROOT), help="checkout whose mtplib runs")
    ap.add_argument("--cases", default="all", help="e.g. 1000x32,1x32000")
    ap.add_argument("--no-grade", action="store_true")
    args = ap.parse_args()

    data = Path(args.data)
    if not (data / "test.extxyz").exists():
        data.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(MAKE), str(data)], check=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_cli_"))
    work.mkdir(parents=True, exist_ok=True)
    pot_path = work / "cu16.mtp"
    pot = bench_potential(pot_path)
    files = make_data(work, data, pot)
    cases = CASES if args.cases == "all" else [tuple(map(int, c.split("x"))) for c in args.cases.split(",")]

    repo = Path(args.repo).resolve()
    env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads), PYTHONPATH=str(repo))
    # as an installed package runs: from cached bytecode (the untimed first run writes it)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    print(f"mtplib from {repo} ({commit}), {args.threads} numba thread(s); mlp: {args.mlp or 'absent'}")
    print(f"load average at the start: {load()}")
    out = work / "out"
    out.mkdir(exist_ok=True)
    mtplib = [sys.executable, "-m", "mtplib", "evaluate", str(pot_path)]
    numba_env = dict(env, MTPLIB_COMPILED="0")
    t = time.perf_counter()
    compiled = subprocess.run([sys.executable, "-m", "mtplib", "compile"], env=env, cwd=repo,
                              capture_output=True, text=True).returncode == 0
    print(f"mtplib compile: {'%.1f s' % (time.perf_counter() - t) if compiled else 'absent'}")
    modes = [("numba", numba_env)] + ([("compiled", env)] if compiled else [])

    print(f"\n{'case':>12s} {'format':>7s} {'kernels':>8s} {'mtplib CPU µs/atom':>19s} "
          f"{'mlp CPU µs/atom':>16s} {'ratio':>6s} {'mtplib wall s':>14s}")
    for n_cells, n_atoms in cases:
        stem = files[(n_cells, n_atoms)]
        total = n_cells * n_atoms
        ref = None
        if args.mlp:
            ref, _ = best([args.mlp, "calc-efs", str(pot_path), f"{stem}.cfg", str(out / "mlp.cfg")],
                          env, repo, args.repeats)
        for fmt in FORMATS:
            for mode, mode_env in modes:
                cpu, wall = best(mtplib + [f"{stem}.{fmt}", str(out / f"o.{fmt}")], mode_env,
                                 repo, args.repeats)
                ratio = f"{cpu / ref:6.2f}" if ref else "     -"
                mlp_col = f"{ref / total * 1e6:16.1f}" if ref else f"{'-':>16s}"
                print(f"{n_cells:>5d} x {n_atoms:<5d} {fmt:>7s} {mode:>8s} {cpu / total * 1e6:19.1f} "
                      f"{mlp_col} {ratio} {wall:14.2f}", flush=True)

    one = work / "one.cfg"
    from mtplib.io import read_frames, write_frames
    frames = read_frames(f"{files[(1000, 32)]}.cfg", ["Cu"])
    from mtplib.io import Frames
    s = frames.atom_start
    write_frames(one, Frames(s[:2], frames.numbers[:32], frames.positions[:32], frames.cells[:1],
                             frames.pbc[:1], frames.types[:32], frames.energy[:1],
                             frames.forces[:32], frames.stress[:1], None, frames.info[:1]), ["Cu"])
    print("\nstart-up, one 32-atom cell (.cfg in and out):")
    commands = [(f"mtplib evaluate ({mode})", mode_env, mtplib + [str(one), str(out / "one.cfg")])
                for mode, mode_env in modes]
    if args.mlp:
        commands.append(("mlp calc-efs", env, [args.mlp, "calc-efs", str(pot_path), str(one),
                                               str(out / "one_mlp.cfg")]))
    for name, cmd_env, cmd in commands:
        run(cmd, cmd_env, repo)
        times = [run(cmd, cmd_env, repo) for _ in range(max(args.repeats, 5))]
        print(f"  {name:26s} wall {statistics.median(w for w, _ in times):.3f} s (median), "
              f"CPU {min(c for _, c in times):.3f} s (least)")
    for mode, mode_env in modes:
        imp_w, imp_c, load_w, load_c, numba = startup_split(mode_env, repo, pot_path, one,
                                                            max(args.repeats, 5))
        print(f"  {mode}: import of mtplib.cli + io + potential: wall {imp_w:.3f} s, CPU {imp_c:.3f} s; "
              f"first evaluation (kernel load): wall {load_w:.3f} s, CPU {load_c:.3f} s "
              f"(numba {'imported' if numba else 'not imported'})")
    for k, (name, code) in enumerate(FLOORS):
        floor_env = dict(env, NUMBA_CACHE_DIR=str(work / "floor_cache"))
        (work / f"floor{k}.py").write_text(code)         # numba caches functions of files only
        cmd = [sys.executable, str(work / f"floor{k}.py")]
        run(cmd, floor_env, work)
        times = [run(cmd, floor_env, work) for _ in range(max(args.repeats, 5))]
        print(f"  floor, {name:38s} wall {statistics.median(w for w, _ in times):.3f} s (median), "
              f"CPU {min(c for _, c in times):.3f} s (least)")

    if not args.no_grade and (1000, 32) in files:
        train = work / "train.cfg"
        if not train.exists():
            from ase.io import read

            from mtplib.io import write_dataset
            write_dataset(train, read(data / "train.extxyz", ":"), species=["Cu"])
        test = f"{files[(1000, 32)]}.cfg"

        def grade(k):              # a fresh active set each time, as calc-grade builds its own
            return [sys.executable, "-m", "mtplib", "grade", str(pot_path), str(train), test,
                    str(out / "g.cfg"), "--state", str(out / f"als{k}.npz")]
        run(grade(0), env, repo)
        cpu = min(run(grade(k + 1), env, repo)[1] for k in range(args.repeats))
        line = f"\ngrade 1000 cells vs the 200-cell set: mtplib {cpu / 1000 * 1e3:.2f} CPU-ms/cell"
        if args.mlp:
            ref, _ = best([args.mlp, "calc-grade", str(pot_path), str(train), test,
                           str(out / "g_mlp.cfg")], env, repo, 1)
            line += f", mlp {ref / 1000 * 1e3:.2f} CPU-ms/cell, ratio {cpu / ref:.2f}"
        print(line)
    print(f"\nload average at the end: {load()}")


if __name__ == "__main__":
    main()
