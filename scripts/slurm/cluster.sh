#!/usr/bin/env bash
# A throwaway single-node SLURM cluster for tests (run as root; needs slurm-wlm and munge):
#   scripts/slurm/cluster.sh up   STATE_DIR    start munged, slurmctld and slurmd; wait until the node is idle
#   scripts/slurm/cluster.sh down STATE_DIR    cancel its jobs and stop its daemons
#   export SLURM_CONF=STATE_DIR/slurm.conf     then sbatch, squeue, sinfo, snakemake --profile ... use it
# Everything (key, config, state, logs, pid files, sockets) lives in STATE_DIR.  Ports are picked
# free at `up`, so a cluster left over in another folder does not get in the way; `up` on a folder
# that already holds one stops that one first (its own pid files name the daemons).
# No accounting database: the snakemake profile must query job states with squeue.
# One thing lies outside STATE_DIR: /etc/slurm/slurm.conf, a symlink to this cluster's config
# (removed by `down`).  The executor's job step drops SLURM_CONF from the environment of the srun
# it runs inside each job (snakemake-executor-plugin-slurm-jobstep 0.6.1), so that srun only finds
# the default path.  A real config there (a regular file) is never touched: `up` refuses.
set -euo pipefail
ETC_CONF=/etc/slurm/slurm.conf

usage() { echo "usage: $0 up|down STATE_DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
mkdir -p "$2"
state=$(cd "$2" && pwd)
export SLURM_CONF=$state/slurm.conf

stop_daemon() {  # stop_daemon NAME: the daemon whose pid file is $state/NAME.pid, if it still runs
    local pidfile=$state/$1.pid pid
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if [[ -d /proc/$pid && $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

down() {
    if [[ -f $SLURM_CONF && -s $state/slurmctld.pid ]]; then
        # Jobs run under slurmstepd, which outlives slurmd: cancel them while the controller is up.
        scancel --quiet --user root 2>/dev/null || true
        for _ in $(seq 50); do [[ -z $(squeue -h -t running,completing 2>/dev/null) ]] && break; sleep 0.2; done
    fi
    stop_daemon slurmd
    stop_daemon slurmctld
    stop_daemon munged
    if [[ -L $ETC_CONF && $(readlink "$ETC_CONF") == "$SLURM_CONF" ]]; then rm -f "$ETC_CONF"; fi
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }

up() {
    down  # whatever this folder ran before
    if [[ -e $ETC_CONF && ! -L $ETC_CONF ]]; then
        echo "$ETC_CONF is a real SLURM config: this host has a cluster, not starting a test one" >&2
        return 1
    fi
    rm -rf "$state/ctld" "$state/spool" "$state/munge" "$state"/*.log
    mkdir -p "$state/ctld" "$state/spool" "$state/munge"
    chmod 700 "$state/munge"

    # munge: its own key and socket, so it never touches a system munged
    dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$state/munge/munge.key"
    munged --force --key-file="$state/munge/munge.key" --socket="$state/munge/munge.socket" \
        --pid-file="$state/munged.pid" --log-file="$state/munged.log" --seed-file="$state/munge/munge.seed"

    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(free -m | awk '/^Mem:/ {print int($2 * 0.95)}')  # below the total, or slurmd drains the node
    cat > "$SLURM_CONF" <<EOF
ClusterName=infomaxtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/munge/munge.socket
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=300
SchedulerParameters=sched_interval=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mkdir -p "$(dirname "$ETC_CONF")"
    ln -sfn "$SLURM_CONF" "$ETC_CONF"
    slurmctld -c -f "$SLURM_CONF"   # -c: start without old jobs
    slurmd -f "$SLURM_CONF" -N "$host"

    for _ in $(seq 120); do
        if [[ $(sinfo -h -N -o %T 2>/dev/null) == idle ]]; then
            echo "SLURM up: export SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        sleep 0.5
    done
    echo "SLURM did not come up within 60 s; sinfo says: $(sinfo -h -N -o '%T %E' 2>&1)" >&2
    tail -n 20 "$state"/*.log >&2 || true
    return 1
}

case $cmd in
    up) up ;;
    down) down ;;
    *) usage ;;
esac
