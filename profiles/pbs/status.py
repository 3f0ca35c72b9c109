#!/usr/bin/env python3
"""Job status for snakemake-executor-plugin-cluster-generic on PBS Pro / OpenPBS / Torque.

Usage: status.py JOBID   ->  prints one of: running, success, failed

PBS Pro / OpenPBS keep finished jobs visible with `qstat -x` (job_state F, Exit_status N).
Torque shows finished jobs as job_state C with exit_status N while `keep_completed` lasts.
A job that qstat no longer knows is reported failed, with the reason on stderr.
"""
import re
import subprocess
import sys

RUNNING_STATES = set("QHRTWESBUM")  # queued, held, running, transit, waiting, exiting, ...


def parse(qstat_f: str) -> str:
    """Map the text of `qstat -f` for one job to running/success/failed."""
    state = re.search(r"^\s*job_state\s*=\s*(\S+)", qstat_f, re.M)
    code = re.search(r"^\s*(?:Exit_status|exit_status)\s*=\s*(-?\d+)", qstat_f, re.M)
    if state is None:
        return "failed"
    s = state.group(1)
    if s in ("F", "C"):  # finished (PBS Pro) / completed (Torque)
        return "success" if code is not None and int(code.group(1)) == 0 else "failed"
    if s in RUNNING_STATES:
        return "running"
    return "failed"


def main(jobid: str) -> int:
    out = None
    for cmd in (["qstat", "-fx", jobid], ["qstat", "-f", jobid]):  # PBS Pro, then Torque
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as err:
            print(f"status.py: {' '.join(cmd)}: {err}", file=sys.stderr)
            continue
        if out.returncode == 0 and "job_state" in out.stdout:
            print(parse(out.stdout))
            return 0
    if out is None:  # no qstat at all: nothing will ever change, so stop waiting
        print("status.py: qstat cannot be run on this host", file=sys.stderr)
        print("failed")
        return 0
    # qstat unreachable for a moment must not fail a running job: say running, try again later.
    if "Unknown Job" in (out.stderr or "") or "unknown job" in (out.stderr or "").lower():
        print(f"status.py: qstat does not know job {jobid}", file=sys.stderr)
        print("failed")
    else:
        print(f"status.py: qstat gave no state for {jobid}: {out.stderr.strip()}", file=sys.stderr)
        print("running")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
