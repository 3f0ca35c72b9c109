#!/usr/bin/env python3
"""Wall time of the default demo's stages 1-3, and Snakemake's own overhead per job.

Runs `snakemake --cores 2` on config/config.yaml (or --configfile) in a temporary working
directory up to the stage-3 targets (results/fit/...), then the same number of no-op jobs
through the same Snakemake, whose wall time per job is Snakemake's overhead.

    python benchmarks/bench_workflow.py [--configfile config/config.yaml] [--cores 2]
"""
import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE3 = ["results/fit/best.mtp", "results/fit/seeds.csv", "results/fit/parity.png"]


def run(cmd, cwd):
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    steps = re.findall(r"(\d+) of (\d+) steps", proc.stdout + proc.stderr)
    return wall, int(steps[-1][1]) if steps else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    snakemake = [sys.executable, "-m", "snakemake", "--cores", str(args.cores)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "demo"
        work.mkdir()
        # targets first: --configfile takes several values
        wall, jobs = run(snakemake + [*STAGE3, "--snakefile", str(ROOT / "Snakefile"),
                                      "--directory", str(work), "--configfile", args.configfile],
                         cwd=ROOT)
        noop = Path(tmp) / "noop"
        noop.mkdir()
        (noop / "Snakefile").write_text(
            f"rule all:\n    input: expand('done/{{i}}', i=range({jobs - 1}))\n\n"
            "rule one:\n    output: 'done/{i}'\n    shell: 'touch {output}'\n")
        noop_wall, noop_jobs = run(snakemake + ["--directory", str(noop)], cwd=noop)
    print(f"default demo, stages 1-3 ({Path(args.configfile).name}, {args.cores} cores): "
          f"{wall:.1f} s wall for {jobs} jobs")
    print(f"Snakemake overhead: {noop_wall:.1f} s for {noop_jobs} no-op jobs = "
          f"{noop_wall / max(1, noop_jobs):.2f} s per job "
          f"({100 * noop_wall / wall:.0f} % of the demo's wall time)")


if __name__ == "__main__":
    main()
