#!/usr/bin/env python3
"""Wall and CPU time of the default demo, per stage and per rule, and Snakemake's overhead.

Runs `snakemake --cores 2` on config/config.yaml (or --configfile) in a fresh working
directory (a copy of the tracked files, as from a clean clone, with an empty numba cache),
then reads the per-job benchmark files every rule writes (logs/benchmarks/**.tsv: wall
seconds and CPU seconds). Also prints the load average sampled during the run and an
estimate of the wall time on an otherwise idle machine: each stage's jobs packed onto the
cores by their CPU time (longest first), the stages in sequence.

    python benchmarks/bench_workflow.py [--configfile config/config.yaml] [--cores 2]
        [--stage3-only] [--workdir DIR] [--keep]
    python benchmarks/bench_workflow.py --summarize DIR     # a finished run in DIR
"""
import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE3 = ["results/fit/best.mtp", "results/fit/seeds.csv", "results/fit/parity.png"]
# benchmark folder -> stage
STAGES = {"displace": "1 displace", "label": "2 label", "fit": "3 fit", "al": "4 active learning",
          "final": "4 final fit", "validation": "5 validation"}


# Installed as sitecustomize.py on the jobs' PYTHONPATH (by this benchmark only): every Python
# process appends its CPU time (all threads, user + system), its wall time since the process
# started, and what it was (the Snakemake rule and log of a script job, or its argv).
CPU_HOOK = textwrap.dedent("""
    import atexit, json, os, resource, sys

    def _record():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        main = sys.modules.get("__main__")
        sm = getattr(main, "snakemake", None)
        with open("/proc/self/stat") as fh:
            start_ticks = float(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        rec = {"pid": os.getpid(), "cpu": usage.ru_utime + usage.ru_stime,
               "wall": uptime - start_ticks / os.sysconf("SC_CLK_TCK"),
               "log": list(sm.log)[0] if sm is not None and len(sm.log) else None,
               "argv": sys.argv[:1] + [a for a in sys.argv[1:] if "--" in a or "/" in a]}
        with open(os.environ["MTP_BENCH_CPU_FILE"], "a") as fh:
            fh.write(json.dumps(rec) + "\\n")

    if os.environ.get("MTP_BENCH_CPU_FILE"):
        atexit.register(_record)
""")


# shell: jobs (run under mpiexec when configured) redirect their log; their output names them
SHELL_JOB_LOGS = [(r"--potential results/(fit|final)/seeds/seed_(\d+)\.mtp", r"logs/\1/seed_\2.log"),
                  (r"--output results/labels/(.+)/(chunk_\d+)\.extxyz", r"logs/label/\1/\2.log"),
                  (r"--output results/labels/isolated\.json", "logs/label/isolated.log"),
                  (r"--output results/al/(iter_\d+)/labelled\.extxyz", r"logs/al/\1/label.log")]


def job_cpu_times(cpu_file):
    """{log path: (CPU s, wall s)} of every recorded Python job process."""
    import json
    out = {}
    if not Path(cpu_file).exists():
        return out
    for line in Path(cpu_file).read_text().splitlines():
        rec = json.loads(line)
        log = rec["log"]
        if log is None:
            argv = " ".join(rec["argv"])
            for pattern, repl in SHELL_JOB_LOGS:
                m = re.search(pattern, argv)
                if m:
                    log = m.expand(repl)
                    break
        if log is not None:
            cpu, wall = out.get(log, (0.0, 0.0))
            out[log] = (cpu + rec["cpu"], wall + rec["wall"])
    return out


def stage_of(rel):
    if rel.parts[:2] == ("fit", "kernels.tsv"):
        return "0 numba compile"
    return STAGES.get(rel.parts[0], rel.parts[0])


def layer_of(rel):
    """Jobs that may run side by side: the stage, or one step of an AL iteration."""
    parts = rel.parts
    if parts[:2] == ("fit", "kernels.tsv"):    # runs alongside stages 1-2
        return ("2 label",)
    if parts[0] == "al" and parts[1].startswith("iter_"):
        step = "md" if parts[2] == "md" else parts[2].split(".")[0]
        return ("4 active learning", parts[1], step)
    if parts[0] == "validation":
        return ("5 validation", parts[-1].split(".")[0] if parts[-1].startswith(("compare", "summary"))
                else "md")
    if parts[0] in ("fit", "final"):
        return (stage_of(rel), "gather" if parts[-1].startswith("gather") else "seeds")
    return (stage_of(rel),)


def read_benchmarks(workdir):
    """One row per job: Snakemake's benchmark wall time, and the CPU time recorded by the
    hook (exact) or else Snakemake's sampled cpu_time (which misses up to 30 s at the end)."""
    hooked = job_cpu_times(Path(workdir) / "cpu_times.jsonl")
    rows = []
    for path in sorted((Path(workdir) / "logs" / "benchmarks").rglob("*.tsv")):
        with open(path) as fh:
            rec = next(csv.DictReader(fh, delimiter="\t"))
        rel = path.relative_to(Path(workdir) / "logs" / "benchmarks")
        log = str(Path("logs") / rel.with_suffix(".log"))
        sampled = float(rec["cpu_time"]) if rec["cpu_time"] not in ("", "NA") else 0.0
        rows.append({"job": str(rel.with_suffix("")), "stage": stage_of(rel), "layer": layer_of(rel),
                     "wall": float(rec["s"]), "cpu": hooked.get(log, (sampled,))[0],
                     "hooked": log in hooked})
    return rows


def packed_wall(durations, cores):
    """Longest-processing-time-first packing of independent jobs onto `cores`."""
    loads = [0.0] * cores
    for d in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += d
    return max(loads)


def summarize(workdir, cores, wall=None, loads=()):
    rows = read_benchmarks(workdir)
    if not rows:
        sys.exit(f"no benchmark files under {workdir}/logs/benchmarks")
    per_stage = defaultdict(lambda: {"jobs": 0, "wall": 0.0, "cpu": 0.0})
    per_rule = defaultdict(lambda: {"jobs": 0, "wall": 0.0, "cpu": 0.0})
    layers = defaultdict(list)
    for r in rows:
        for table, key in ((per_stage, r["stage"]), (per_rule, re.sub(r"iter_\d+/", "iter_*/",
                                                                      r["job"]))):
            table[key]["jobs"] += 1
            table[key]["wall"] += r["wall"]
            table[key]["cpu"] += r["cpu"]
        layers[r["layer"]].append(r["cpu"])
    idle = defaultdict(float)
    for layer, cpus in layers.items():
        idle[layer[0]] += packed_wall(cpus, cores)
    print(f"{'stage':22s} {'jobs':>5s} {'sum wall s':>11s} {'sum CPU s':>10s} "
          f"{'idle-machine wall s':>20s}")
    for stage in sorted(per_stage):
        s = per_stage[stage]
        print(f"{stage:22s} {s['jobs']:5d} {s['wall']:11.1f} {s['cpu']:10.1f} {idle[stage]:20.1f}")
    total_cpu = sum(r["cpu"] for r in rows)
    print(f"{'total':22s} {len(rows):5d} {sum(r['wall'] for r in rows):11.1f} {total_cpu:10.1f} "
          f"{sum(idle.values()):20.1f}")
    print("\nper rule (iterations merged):")
    for key in sorted(per_rule):
        s = per_rule[key]
        print(f"  {key:45s} {s['jobs']:3d} jobs  wall {s['wall']:7.1f} s  CPU {s['cpu']:7.1f} s")
    iterations = sorted({r["layer"][1] for r in rows if r["stage"] == "4 active learning"
                         and len(r["layer"]) > 1})
    print(f"\nactive-learning iterations run: {len(iterations)}")
    if wall is not None:
        print(f"measured wall time: {wall:.1f} s ({wall / 60:.1f} min) on {cores} cores")
    if loads:
        print(f"load average (1 min) during the run: mean {sum(loads) / len(loads):.2f}, "
              f"min {min(loads):.2f}, max {max(loads):.2f} ({len(loads)} samples)")
    print(f"CPU time from the per-process hook for {sum(r['hooked'] for r in rows)} of "
          f"{len(rows)} jobs")
    print(f"idle-machine estimate (CPU time packed on {cores} cores, stages in sequence): "
          f"{sum(idle.values()):.0f} s ({sum(idle.values()) / 60:.1f} min)")


def run(cmd, cwd, env=None):
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    steps = re.findall(r"(\d+) of (\d+) steps", proc.stdout + proc.stderr)
    return wall, int(steps[-1][1]) if steps else 0


def sample_load(loads, stop):
    while not stop.wait(10):
        loads.append(os.getloadavg()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--stage3-only", action="store_true",
                        help="stop after stage 3 and measure Snakemake's per-job overhead")
    parser.add_argument("--workdir", help="run here (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--summarize", metavar="DIR", help="only summarize a finished run")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize, args.cores)
        return
    tmp = Path(args.workdir or tempfile.mkdtemp(prefix="bench_workflow_"))
    work = tmp / "demo"
    # a clean clone: the tracked files only, so no numba cache and no results
    work.mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, work / name)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    hook = tmp / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CPU_HOOK)
    env["PYTHONPATH"] = f"{work}{os.pathsep}{hook}"
    env["MTP_BENCH_CPU_FILE"] = str(work / "cpu_times.jsonl")
    snakemake = [sys.executable, "-m", "snakemake", "--cores", str(args.cores)]
    targets = STAGE3 if args.stage3_only else []
    loads, stop = [], threading.Event()
    sampler = threading.Thread(target=sample_load, args=(loads, stop), daemon=True)
    sampler.start()
    # targets first: --configfile takes several values
    wall, jobs = run(snakemake + [*targets, "--configfile", args.configfile], cwd=work, env=env)
    stop.set()
    summarize(work, args.cores, wall, loads)
    if args.stage3_only:
        noop = tmp / "noop"
        noop.mkdir()
        (noop / "Snakefile").write_text(
            f"rule all:\n    input: expand('done/{{i}}', i=range({jobs - 1}))\n\n"
            "rule one:\n    output: 'done/{i}'\n    shell: 'touch {output}'\n")
        noop_wall, noop_jobs = run(snakemake + ["--directory", str(noop)], cwd=noop)
        print(f"Snakemake overhead: {noop_wall:.1f} s for {noop_jobs} no-op jobs = "
              f"{noop_wall / max(1, noop_jobs):.2f} s per job "
              f"({100 * noop_wall / wall:.0f} % of the wall time)")
    if not (args.keep or args.workdir):
        shutil.rmtree(tmp)
    else:
        print(f"kept {work}")


if __name__ == "__main__":
    main()
