#!/usr/bin/env bash
# Stops the single-node Slurm cluster started by slurm_setup.sh, and munged unless --keep-munge is given.
# Idempotent: daemons that are not running are skipped.
set -euo pipefail

keep_munge=false
case "${1:-}" in
    "") ;;
    --keep-munge) keep_munge=true ;;
    *) echo "slurm_teardown: unknown option '$1'; use --keep-munge or nothing" >&2; exit 1 ;;
esac

# Stops the daemons whose pid files are given: SIGTERM to all at once (each takes 1-2 s to exit), then up to 10 s
# for them to go, then SIGKILL.
stop() {
    local pidfile pid pids=()
    for pidfile in "$@"; do
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then pids+=("$pid"); fi
        rm -f "$pidfile"
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    for _ in $(seq 50); do kill -0 "${pids[@]}" 2>/dev/null || break; sleep 0.2; done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

stop /run/slurmd.pid /run/slurmctld.pid
$keep_munge || stop /run/munge/munged.pid
