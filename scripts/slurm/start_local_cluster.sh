#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine, for tests and for trying the SLURM launchers.
#
#   scripts/slurm/start_local_cluster.sh [DIR]    (default DIR: /tmp/syncxr-slurm; run as root)
#   source DIR/env                                # exports SLURM_CONF for sbatch/squeue/submitit
#   python train.py -m hydra/launcher=slurm hydra.launcher.partition=local hydra.launcher.gpus_per_node=null ...
#   scripts/slurm/stop_local_cluster.sh DIR
#
# Debian packages: slurm-wlm and munge (apt-get install -y slurm-wlm munge). No systemd, no accounting
# database: a private munged (own key and socket), slurmctld and slurmd, all started by hand, with
# config, state, logs and pid files under DIR, so the stop script ends exactly what this one started.
# Without accounting `sacct` fails: whoever waits on a job must bound the wait.
# Ports: free ones are picked unless SYNCXR_SLURMCTLD_PORT / SYNCXR_SLURMD_PORT are set.
# SYNCXR_SLURM_KILL_WAIT: seconds between SIGTERM and SIGKILL of a cancelled/requeued job (default 5;
# srun lets the step run up to 2 s longer).
set -euo pipefail

DIR=${1:-/tmp/syncxr-slurm}
PARTITION=${SYNCXR_SLURM_PARTITION:-local}
WAIT_S=${SYNCXR_SLURM_START_TIMEOUT:-60}  # bound on each wait below

die() { echo "start_local_cluster: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (SlurmUser=root, munged is started as the munge user)"
for bin in munged mungekey slurmctld slurmd sinfo scontrol runuser; do
    command -v "$bin" >/dev/null || die "$bin not found: apt-get install -y slurm-wlm munge"
done
id munge >/dev/null 2>&1 || die "no munge user: apt-get install -y munge"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
for pidfile in "$DIR"/run/*.pid; do
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        die "$(basename "$pidfile" .pid) (pid $pid) of a cluster in $DIR is still running: stop_local_cluster.sh $DIR"
    fi
done

mkdir -p "$DIR"/{etc,state,spool,log,run,munge}
chmod 755 "$DIR"
# munged runs as the munge user: it must reach DIR, and refuses group/world-writable key or socket dirs.
runuser -u munge -- test -x "$DIR" || die "the munge user cannot enter $DIR: use a directory whose parents are world-executable (e.g. under /tmp)"
chown munge:munge "$DIR/munge"
chmod 711 "$DIR/munge"
if [[ ! -s $DIR/munge/munge.key ]]; then
    mungekey --create --keyfile="$DIR/munge/munge.key" --bits=1024 >/dev/null 2>&1 \
        || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=128 count=1 status=none
fi
chown munge:munge "$DIR/munge/munge.key"
chmod 400 "$DIR/munge/munge.key"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
CTLD_PORT=${SYNCXR_SLURMCTLD_PORT:-$(free_port)}
SLURMD_PORT=${SYNCXR_SLURMD_PORT:-$(free_port)}
while [[ $SLURMD_PORT == "$CTLD_PORT" ]]; do SLURMD_PORT=$(free_port); done

HOST=$(hostname -s)
# "NodeName=host CPUs=... RealMemory=..." as slurmd sees this machine (the first line of slurmd -C).
NODE_LINE=$(slurmd -C | head -n 1)
[[ $NODE_LINE == NodeName=* ]] || die "unexpected slurmd -C output: $NODE_LINE"
CPUS=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")
MEM_MB=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")
DEF_MEM=$(( MEM_MB / CPUS / 2 ))  # per CPU when a job asks no memory: jobs share the node

CONF=$DIR/etc/slurm.conf
: >"$DIR/etc/plugstack.conf"  # none of the system's SPANK plugins
cat >"$CONF" <<EOF
# Written by scripts/slurm/start_local_cluster.sh: a one-node cluster in $DIR.
ClusterName=syncxr
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire=5: a requeued job is held 5 s instead of 121 s.
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=5
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/etc/plugstack.conf
# No cgroups in containers: track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
JobRequeue=1
# Schedule at once, and kill a cancelled or requeued job soon after SIGTERM.
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=5,bf_interval=5
KillWait=${SYNCXR_SLURM_KILL_WAIT:-5}
MinJobAge=600
InactiveLimit=0
# Cores and memory are consumable, so several small jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$NODE_LINE NodeAddr=127.0.0.1 NodeHostname=$HOST State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

t0=$(date +%s%N)
wait_for() {  # wait_for DESCRIPTION COMMAND...: poll until COMMAND succeeds, at most WAIT_S seconds
    local what=$1; shift
    local deadline=$(( $(date +%s) + WAIT_S ))
    until "$@" >/dev/null 2>&1; do
        (( $(date +%s) < deadline )) || die "timed out after ${WAIT_S}s waiting for $what (logs in $DIR/log)"
        sleep 0.2
    done
}

SOCKET=$DIR/munge/munge.socket
rm -f "$SOCKET" "$SOCKET.lock"
runuser -u munge -- munged --socket="$SOCKET" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
    --seed-file="$DIR/munge/munged.seed"
wait_for "munged" bash -c "munge -n -S '$SOCKET' | unmunge -S '$SOCKET'"
cp "$DIR/munge/munged.pid" "$DIR/run/munged.pid"  # the stop script reads every pid from run/

export SLURM_CONF=$CONF
slurmctld -f "$CONF"
wait_for "slurmctld" scontrol ping
slurmd -f "$CONF"
node_up() { [[ $(sinfo -h -n "$HOST" -o %t) =~ ^(idle|mix|alloc) ]]; }
wait_for "node $HOST to be idle" node_up

cat >"$DIR/env" <<EOF
export SLURM_CONF=$CONF
EOF
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
printf 'started a one-node SLURM cluster in %d.%01d s: partition %s, %s CPUs, %s MB (SLURM_CONF=%s)\n' \
    $((ms / 1000)) $((ms % 1000 / 100)) "$PARTITION" "$CPUS" "$MEM_MB" "$CONF"
echo "use it with: source $DIR/env"
