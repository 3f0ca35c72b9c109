#!/usr/bin/env bash
# Bring up a real single-node SLURM (munged + slurmctld + slurmd) for the cluster tests.
#
# Route: no accounting database. Job status comes from `squeue` (the profile's tests pass
# `--slurm-status-command squeue`), which works because MinJobAge=600 keeps finished jobs in
# slurmctld's memory for 10 minutes. This avoids MariaDB + slurmdbd (27 MB more, a daemon that
# crashed when its pid/log lived in a root-owned folder) and takes about 5 s once installed.
# Finished jobs are still listed by `sacct -c`, which reads the job-completion text file of
# JobCompType=jobcomp/filetxt ($MTP_SLURM_DIR/log/jobcomp.txt); plain `sacct` needs slurmdbd.
#
# Facts behind every choice: /work/shared/ci/SLURM.md and profiles/README.md.
#
# Usage:  .ci/slurm_up.sh   (root; idempotent: exits 0 at once when its daemons run and the node is
#                           idle; to apply a changed slurm.conf run .ci/slurm_down.sh first)
# Env:    MTP_SLURM_DIR   scratch folder for slurm.conf, state, spool, logs, pid files
#                         (default /tmp/mtp-slurm)
#         MTP_SLURM_PARTITION  partition name (default debug)
#         MTP_SLURM_WAIT  seconds to wait for the node to be idle (default 60)
# The config lives in $MTP_SLURM_DIR/slurm.conf; /etc/slurm/slurm.conf is a symlink to it, so
# every client (sinfo, sbatch, the Snakemake plugin) finds it without SLURM_CONF.
set -euo pipefail

DIR=${MTP_SLURM_DIR:-/tmp/mtp-slurm}
PARTITION=${MTP_SLURM_PARTITION:-debug}
WAIT=${MTP_SLURM_WAIT:-60}
PACKAGES=(slurmctld slurmd slurm-client munge)

say() { printf '[slurm_up] %s\n' "$*"; }
die() { printf '[slurm_up] ERROR: %s\n' "$*" >&2; exit 1; }

alive() {  # alive PIDFILE -> 0 if the process named in it is running
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

node_idle() {
    local state
    state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n1) || return 1
    [[ $state == idle || $state == mix || $state == alloc ]]
}

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts slurmd as root)"

# --- 0. already up? ------------------------------------------------------------------------------
if command -v sinfo >/dev/null && alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" \
        && node_idle; then
    say "already up: $(sinfo -h -o '%P %a %D %t %N' | tr '\n' ' ')(config $DIR/slurm.conf)"
    exit 0
fi

# --- 1. packages ---------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]} (apt, --no-install-recommends)"
    export DEBIAN_FRONTEND=noninteractive
    # Package scripts print "policy-rc.d denied execution of start": expected, we start by hand.
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$DIR.apt.log" 2>&1; then
        apt-get update -qq >>"$DIR.apt.log" 2>&1 || die "apt-get update failed, see $DIR.apt.log"
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$DIR.apt.log" 2>&1 \
            || die "apt-get install ${missing[*]} failed, see $DIR.apt.log"
    fi
else
    say "packages present: ${PACKAGES[*]} ($(dpkg-query -W -f='${Version}' slurmctld))"
fi

# --- 2. munge ------------------------------------------------------------------------------------
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [[ -s /etc/munge/munge.key ]] || mungekey --create >/dev/null \
        || die "no /etc/munge/munge.key and mungekey --create failed"
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    # munged daemonizes; it writes /run/munge/munged.pid itself.
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.25; done
    munge -n | unmunge >/dev/null 2>&1 || die "munge -n | unmunge fails after starting munged"
    say "munged started (pid $(cat /run/munge/munged.pid 2>/dev/null || echo '?'))"
else
    say "munged already answers"
fi

# --- 3. slurm.conf -------------------------------------------------------------------------------
HOST=$(hostname -s)
if ! getent hosts "$HOST" >/dev/null; then
    echo "127.0.0.1 $HOST" >>/etc/hosts
    say "added '127.0.0.1 $HOST' to /etc/hosts (the node name must resolve)"
fi
NCPU=$(nproc)
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
[[ -n $MEM ]] || die "slurmd -C did not report RealMemory"
MEM=$((MEM * 85 / 100))   # leave headroom: slurmd drains a node that has less than it claims

install -d -m 0755 "$DIR" "$DIR/state" "$DIR/spool" "$DIR/log"
cat >"$DIR/slurm.conf.new" <<EOF
# Written by .ci/slurm_up.sh -- single-node test cluster, no cgroups, no accounting.
ClusterName=mtpci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
# No systemd, no cgroups on this machine: track processes via /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: Snakemake must poll with squeue, so finished jobs stay visible for 10 minutes.
AccountingStorageType=accounting_storage/none
# A job-completion file instead: "sacct -c" lists every finished job from it (no daemon).
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
MinJobAge=600
ReturnToService=2
# Schedule cores and memory; DefMemPerCPU stops a job without --mem taking the whole node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# SLURM's own default: a bare "srun -n 2" gives two 1-rank worlds. The profiles pass
# "srun --mpi=pmi2" (what the mpich wheel needs), so the MPI test proves the profile, not this line.
MpiDefault=none
SchedulerType=sched/backfill
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
mv "$DIR/slurm.conf.new" "$DIR/slurm.conf"
install -d -m 0755 /etc/slurm
if [[ -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf ]]; then
    mv /etc/slurm/slurm.conf "/etc/slurm/slurm.conf.before-mtp.$(date +%s)"
    say "kept the previous /etc/slurm/slurm.conf as /etc/slurm/slurm.conf.before-mtp.*"
fi
ln -sfn "$DIR/slurm.conf" /etc/slurm/slurm.conf
say "wrote $DIR/slurm.conf (node $HOST, $NCPU CPUs, ${MEM} MB, partition $PARTITION);" \
    "/etc/slurm/slurm.conf -> it"

# --- 4. daemons (a half-up or stale set is restarted so that the new slurm.conf is read) --------
"$(dirname "$0")/slurm_down.sh" --slurm-only >/dev/null 2>&1 || true
slurmctld || die "slurmctld did not start; see $DIR/log/slurmctld.log"
slurmd || die "slurmd did not start; see $DIR/log/slurmd.log"
say "started slurmctld (pid $(cat "$DIR/slurmctld.pid" 2>/dev/null || echo '?'))" \
    "and slurmd (pid $(cat "$DIR/slurmd.pid" 2>/dev/null || echo '?'))"

# --- 5. wait for an idle node --------------------------------------------------------------------
t0=$SECONDS
until node_idle; do
    if ((SECONDS - t0 > WAIT)); then
        sinfo -N -l >&2 || true
        tail -n 20 "$DIR/log/slurmd.log" "$DIR/log/slurmctld.log" >&2 || true
        die "node $HOST not idle after ${WAIT}s (logs above, full logs in $DIR/log)"
    fi
    # A node left DOWN/DRAIN by an earlier run is brought back.
    state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n1 || true)
    if [[ $state == down* || $state == drain* ]]; then
        scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
    fi
    sleep 0.5
done
say "node idle after $((SECONDS - t0)) s: $(sinfo -h -o '%P %a %D %t %N' | tr '\n' ' ')"
