#!/usr/bin/env bash
# Stop the one-node SLURM cluster that start_local_cluster.sh started in DIR.
#
#   scripts/slurm/stop_local_cluster.sh [DIR]    (default DIR: /tmp/syncxr-slurm)
#
# Cancels the cluster's jobs (bounded wait), then stops slurmd, slurmctld and munged through the pid
# files under DIR/run, checking that each pid still runs the expected program. Nothing else is
# touched; DIR itself (config, state, logs) is kept.
set -uo pipefail

DIR=${1:-/tmp/syncxr-slurm}
WAIT_S=${SYNCXR_SLURM_STOP_TIMEOUT:-30}
[[ -d $DIR ]] || { echo "stop_local_cluster: no cluster directory $DIR" >&2; exit 1; }
DIR=$(cd "$DIR" && pwd)
CONF=$DIR/etc/slurm.conf
export SLURM_CONF=$CONF

alive() {  # alive PIDFILE PROGRAM: prints the pid if it runs PROGRAM
    local pid
    [[ -f $1 ]] || return 1
    pid=$(cat "$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] || return 1
    echo "$pid"
}

# Jobs first: a job's slurmstepd and processes outlive slurmd, so end them while slurmd can.
if alive "$DIR/run/slurmctld.pid" slurmctld >/dev/null; then
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
    if [[ -n $jobs ]]; then
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null
        deadline=$(( $(date +%s) + WAIT_S ))
        while [[ -n $(squeue -h -t all -o '%A %t' 2>/dev/null | awk '$2 !~ /^(CD|CA|F|TO|NF|PR|OOM|BF|DL)$/') ]]; do
            (( $(date +%s) < deadline )) || { echo "stop_local_cluster: jobs still ending after ${WAIT_S}s" >&2; break; }
            sleep 0.5
        done
    fi
fi

stop() {  # stop NAME PROGRAM: SIGTERM, bounded wait, then SIGKILL
    local pidfile=$DIR/run/$1.pid pid i
    pid=$(alive "$pidfile" "$2") || { rm -f "$pidfile"; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < WAIT_S * 10; i++)); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
    done
    if [[ -d /proc/$pid ]]; then
        echo "stop_local_cluster: $1 (pid $pid) ignored SIGTERM, killing it" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
    echo "stopped $1 (pid $pid)"
}

stop slurmd slurmd
stop slurmctld slurmctld
stop munged munged
rm -f "$DIR/munge/munge.socket" "$DIR/munge/munge.socket.lock"
