#!/usr/bin/env python3
"""Numba compile of a fresh clone: the workflow's compile_kernels step on an empty cache.

Runs `mtplib.warmup.compile_kernels` (what rule compile_kernels runs: training, serial,
parallel and batch evaluation, the active set and the grade in both selection modes) for the
potential of --configfile's `mtp` and `elements`, in a fresh process with an empty numba
cache, for this checkout and for --other checkouts (e.g. `git worktree add /tmp/base REV`),
alternating over --rounds so that the machine's load falls on all alike. Prints the CPU
seconds of each process (user + system: the cost of the compile) and the ratio to the first
checkout, and the compile time of each numba entry point (self time, this checkout, last
round) with --per-function.

    python benchmarks/bench_compile.py [--configfile config/config.yaml] [--other DIR ...]
        [--rounds 2] [--per-function]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run inside the measured checkout: compile_kernels on an empty cache, then print the
# process's CPU time (and, with PER_FUNCTION, numba's compile events: self time per function).
DRIVER = r"""
import json, os, resource, sys, time
from collections import defaultdict
sys.path.insert(0, os.path.join(os.environ["REPO"], "scripts"))
self_time = defaultdict(float)
if os.environ.get("PER_FUNCTION"):
    from numba.core import event
    stack = []

    class Listener(event.Listener):
        def on_start(self, ev):
            stack.append([ev.data["dispatcher"].py_func.__qualname__, time.process_time(), 0.0])

        def on_end(self, ev):
            name, t0, child = stack.pop()
            dt = time.process_time() - t0
            if stack:
                stack[-1][2] += dt
            self_time[name] += dt - child

    event.register("numba:compile", Listener())
from mtpflow.settings import MTPSettings, build
from mtplib.warmup import compile_kernels
config = json.loads(os.environ["MTP_CONFIG"])
pot = build(MTPSettings, config["mtp"]).initial_potential(config["elements"])
compile_kernels(pot, log=lambda *a: None)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime,
                  "functions": sorted(self_time.items(), key=lambda kv: -kv[1])[:15]}))
"""


def measure(repo, config, per_function):
    with tempfile.TemporaryDirectory(prefix="bench_compile_") as cache:
        env = dict(os.environ, REPO=str(repo), PYTHONPATH=str(repo), NUMBA_CACHE_DIR=cache,
                   MTP_CONFIG=json.dumps(config), NUMBA_NUM_THREADS="2",
                   PER_FUNCTION="1" if per_function else "")
        proc = subprocess.run([sys.executable, "-c", DRIVER], env=env, cwd=repo,
                              capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{repo}: compile failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--other", nargs="*", default=[], help="other checkouts to compare")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--per-function", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    from mtpflow.settings import load_config
    config = load_config(args.configfile)
    config = {"mtp": config["mtp"], "elements": config["elements"]}
    repos = [ROOT] + [Path(o).resolve() for o in args.other]
    print(f"compile_kernels on an empty numba cache, mtp {config['mtp']}, elements "
          f"{config['elements']}; load average at the start: {os.getloadavg()}")
    cpu = {r: [] for r in repos}
    last = {}
    for k in range(args.rounds):
        for repo in repos:
            out = measure(repo, config, args.per_function and repo == ROOT and k == args.rounds - 1)
            cpu[repo].append(out["cpu"])
            last[repo] = out
            print(f"  round {k}: {repo} {out['cpu']:.1f} CPU-s", flush=True)
    base = statistics.median(cpu[ROOT])
    for repo in repos:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        med = statistics.median(cpu[repo])
        print(f"{str(repo):40s} {commit:9s} median {med:6.1f} CPU-s  ratio to this checkout "
              f"{med / base:.2f}")
    if args.per_function:
        print("compile self time per entry point (this checkout, last round):")
        for name, t in last[ROOT]["functions"]:
            print(f"  {t:6.2f} CPU-s  {name}")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
