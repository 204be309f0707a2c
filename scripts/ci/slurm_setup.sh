#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this host (slurmctld + slurmd + munged, all on localhost) so CI can run the
# pipeline with -profile slurm. Idempotent: a rerun with an unchanged config only repeats the smoke tests.
# Usage (as root): slurm_setup.sh        Stop it with slurm_teardown.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
conf=/etc/slurm/slurm.conf

[ "$(id -u)" -eq 0 ] || { echo "slurm_setup: run as root (it installs packages and starts daemons)" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sbatch >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
        || { echo "slurm_setup: apt-get install slurm-wlm munge failed; check the Debian mirror is reachable" >&2; exit 1; }
fi

if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 600 /etc/munge/munge.key
fi
if ! munge -n >/dev/null 2>&1; then
    install -d -o munge -g munge -m 755 /run/munge
    runuser -u munge -- /usr/sbin/munged
fi
munge -n | unmunge >/dev/null || { echo "slurm_setup: munged does not answer; see /var/log/munge/munged.log" >&2; exit 1; }

node=$(hostname -s)
mem_mib=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
new_conf=$(cat <<CONF
# Written by scclust scripts/ci/slurm_setup.sh: one node on localhost, for tests only.
ClusterName=scclust-ci
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MailProg=/bin/true
MpiDefault=none
ReturnToService=2
# No cgroups: this host mixes cgroup v1 and v2, which Slurm's cgroup plugins reject.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Cores are scheduled, memory is not: a task's --mem is checked against RealMemory but never blocks or kills it.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Trust the node line below instead of the hardware probe (CI runners often see more CPUs than they may use).
SlurmdParameters=config_overrides
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mib State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
)

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if [ "$(cat "$conf" 2>/dev/null)" != "$new_conf" ] || ! running /run/slurmctld.pid || ! running /run/slurmd.pid; then
    "$here/slurm_teardown.sh" --keep-munge
    printf '%s\n' "$new_conf" > "$conf"
    install -d /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    # -c: start from an empty job table, so jobs left by an earlier run do not come back.
    slurmctld -c
    slurmd
fi

# mixed/allocated: a rerun while jobs of an earlier run are still going.
up() { case "$state" in idle | mixed | allocated) return 0 ;; *) return 1 ;; esac; }
for _ in $(seq 60); do
    state=$(sinfo -h -N -n "$node" -o %T 2>/dev/null || true)
    up && break
    sleep 1
done
up || { echo "slurm_setup: node $node is '${state:-unknown}', not idle, after 60 s; see /var/log/slurm/*.log" >&2; exit 1; }

timeout 60 srun -N1 hostname >/dev/null || { echo "slurm_setup: srun smoke test failed; see /var/log/slurm/*.log" >&2; exit 1; }
out=$(mktemp /tmp/slurm-smoke.XXXXXX)
sbatch --quiet --output="$out" --wrap 'echo sbatch-ok'
# Polled here rather than with `sbatch --wait`, whose own polling backs off to several seconds.
for _ in $(seq 300); do grep -q sbatch-ok "$out" && break; sleep 0.2; done
grep -q sbatch-ok "$out" || { echo "slurm_setup: sbatch smoke job wrote nothing to $out in 60 s; see /var/log/slurm/*.log" >&2; exit 1; }
rm -f "$out"
echo "slurm_setup: node $node $state in partition debug ($(nproc) CPUs, ${mem_mib} MiB); srun and sbatch work"
