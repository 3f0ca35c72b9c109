#!/usr/bin/env bash
# Stop the test SLURM started by .ci/slurm_up.sh: slurmd, slurmctld, then munged, each by the
# pid in its pid file (never by process name). Re-runnable: a missing or stale pid file is fine.
#
# Usage:  .ci/slurm_down.sh [--slurm-only]     (--slurm-only leaves munged running)
# Env:    MTP_SLURM_DIR  as in slurm_up.sh (default /tmp/mtp-slurm)
set -uo pipefail

DIR=${MTP_SLURM_DIR:-/tmp/mtp-slurm}
say() { printf '[slurm_down] %s\n' "$*"; }

stop() {  # stop NAME PIDFILE
    local name=$1 pidfile=$2 pid
    if [[ ! -s $pidfile ]]; then
        say "$name: no pid file ($pidfile)"
        return 0
    fi
    pid=$(cat "$pidfile")
    if ! kill -0 "$pid" 2>/dev/null; then
        say "$name: pid $pid not running; removing stale $pidfile"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name: pid $pid ignored SIGTERM for 10 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    say "$name: stopped (pid $pid)"
}

stop slurmd "$DIR/slurmd.pid"
stop slurmctld "$DIR/slurmctld.pid"
if [[ ${1:-} != --slurm-only ]]; then
    stop munged /run/munge/munged.pid
fi
