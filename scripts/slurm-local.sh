#!/usr/bin/env bash
# A throw-away single-node SLURM cluster on localhost, for tests and for trying the job
# scripts in jobs/ without a real cluster.
#
#   scripts/slurm-local.sh install        install slurmctld, slurmd, slurm-client, munge (apt)
#   scripts/slurm-local.sh start [DIR]    install if missing, write a config, start the daemons
#   scripts/slurm-local.sh stop [DIR]     cancel our jobs, stop the daemons (by their pid files)
#   scripts/slurm-local.sh restart [DIR]  stop, then start
#   scripts/slurm-local.sh status [DIR]   daemons, node state; exit status 0 when usable
#   scripts/slurm-local.sh env [DIR]      print `export SLURM_CONF=...` (use with eval)
#
# Everything (config, state, spool, logs, pid files, munge socket and key) lives under one
# state folder: DIR, else $MCSIM_SLURM_DIR, else ${TMPDIR:-/tmp}/mcsim-slurm. The running
# cluster writes nothing to /etc and touches no system service, so it can run next to a
# real installation (give it other ports).
#
# Other settings (environment):
#   MCSIM_SLURM_PORT   slurmctld port (default 6817); slurmd uses the next one
#   MCSIM_SLURM_CPUS   CPUs the node declares (default: max(4, nproc)); more than the
#                      cores is fine (config_overrides), it lets small MPI jobs run
#   MCSIM_SLURM_AUTH   "munge" (default) or "none"; munge falls back to none if munged
#                      cannot be started
#   MCSIM_SLURM_CRED_EXPIRE  seconds a requeued job waits before it may start again
#                      (default 5 here; SLURM's own default is 120)
#
# Needs root: apt-get, munged runs as the munge user, slurmd launches jobs. No systemd or
# cgroups are needed (proctrack/linuxproc, task/none). Daemons are always stopped by the pid
# in their own pid file, never by process name, so other SLURM or munge processes on the
# machine are left alone.
set -euo pipefail

cmd=${1:-status}
STATE=${2:-${MCSIM_SLURM_DIR:-${TMPDIR:-/tmp}/mcsim-slurm}}
# Absolute, because the daemons change directory and slurm.conf names files in it.
STATE=$(realpath -m -- "$STATE")
PORT=${MCSIM_SLURM_PORT:-6817}
NODE=$(hostname -s)
CONF=$STATE/slurm.conf
MUNGE_DIR=$STATE/munge
export SLURM_CONF=$CONF

log() { echo "slurm-local: $*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (apt-get, munged, slurmd)"
}

install() {
    # Idempotent: apt is only asked when one of the programs is missing.
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
       command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    need_root
    command -v apt-get >/dev/null || die "apt-get not found; install slurmctld, slurmd, slurm-client and munge yourself"
    log "installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    # apt's "policy-rc.d denied execution" message is expected in containers: the packages'
    # own services are not started, which is what we want.
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

# pid_alive FILE NAME: the pid in FILE is a live process whose command line mentions NAME.
# The name check only guards against a stale pid file whose pid was reused.
pid_alive() {
    local file=$1 name=$2 pid
    [ -s "$file" ] || return 1
    pid=$(tr -dc '0-9' <"$file")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name"
}

stop_pidfile() {
    local file=$1 name=$2 pid
    if ! pid_alive "$file" "$name"; then rm -f "$file"; return 0; fi
    pid=$(tr -dc '0-9' <"$file")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
        log "$name (pid $pid) did not stop after TERM; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

start_munge() {
    # munged refuses to run as root, and checks that its key, socket and log directories
    # are owned by its own user and not writable by others; hence the munge-owned folder.
    pid_alive "$MUNGE_DIR/munged.pid" munged && return 0
    command -v munged >/dev/null && id munge >/dev/null 2>&1 || return 1
    mkdir -p "$MUNGE_DIR"
    chmod 0711 "$MUNGE_DIR"  # the socket needs o+x on its folder
    if [ ! -s "$MUNGE_DIR/munge.key" ]; then
        dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
    fi
    chown -R munge:munge "$MUNGE_DIR"
    chmod 0400 "$MUNGE_DIR/munge.key"
    runuser -u munge -- /usr/sbin/munged \
        --socket="$MUNGE_DIR/munge.socket" --key-file="$MUNGE_DIR/munge.key" \
        --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" >/dev/null 2>&1 || return 1
    for _ in $(seq 50); do
        [ -S "$MUNGE_DIR/munge.socket" ] && pid_alive "$MUNGE_DIR/munged.pid" munged && return 0
        sleep 0.1
    done
    return 1
}

write_conf() {
    local auth=$1 cpus
    cpus=${MCSIM_SLURM_CPUS:-$(nproc)}
    [ "$cpus" -ge 4 ] || cpus=4
    mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/log"
    # cred_expire is also how long a requeued job waits before it may start again
    # (default 120 s); short here so that requeue tests are quick.
    local CRED_EXPIRE=${MCSIM_SLURM_CRED_EXPIRE:-5}
    {
        echo "# written by scripts/slurm-local.sh; a single-node test cluster"
        echo "ClusterName=mcsimlocal"
        echo "SlurmctldHost=$NODE(127.0.0.1)"
        echo "SlurmctldPort=$PORT"
        echo "SlurmdPort=$((PORT + 1))"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        if [ "$auth" = munge ]; then
            echo "AuthType=auth/munge"
            echo "CredType=cred/munge"
            echo "AuthInfo=socket=$MUNGE_DIR/munge.socket,cred_expire=$CRED_EXPIRE"
        else
            echo "AuthType=auth/none"
            echo "CredType=cred/none"
            echo "AuthInfo=cred_expire=$CRED_EXPIRE"
        fi
        echo "StateSaveLocation=$STATE/ctld"
        echo "SlurmdSpoolDir=$STATE/spool"
        echo "SlurmctldPidFile=$STATE/slurmctld.pid"
        echo "SlurmdPidFile=$STATE/slurmd.pid"
        echo "SlurmctldLogFile=$STATE/log/slurmctld.log"
        echo "SlurmdLogFile=$STATE/log/slurmd.log"
        # No systemd and no cgroups in containers: track processes by parent pid.
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/none"
        echo "JobAcctGatherType=jobacct_gather/none"
        echo "AccountingStorageType=accounting_storage/none"
        # No accounting database, so no sacct: finished jobs are logged to a text file.
        echo "JobCompType=jobcomp/filetxt"
        echo "JobCompLoc=$STATE/log/jobcomp.txt"
        echo "SwitchType=switch/none"
        echo "MpiDefault=pmi2"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_CPU"
        # Fast turnaround for tests; MinJobAge keeps `scontrol show job` answering after
        # a job ended.
        echo "SchedulerParameters=sched_interval=1"
        echo "KillWait=5"
        echo "MinJobAge=300"
        echo "ReturnToService=2"
        # Declare more CPUs than the machine has, so that small MPI jobs fit.
        echo "SlurmdParameters=config_overrides"
        echo "NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN"
        echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
    } >"$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
}

daemons_running() {
    pid_alive "$STATE/slurmctld.pid" slurmctld && pid_alive "$STATE/slurmd.pid" slurmd
}

node_state() { sinfo -h -o %T 2>/dev/null | head -n1; }

start() {
    need_root
    install
    mkdir -p "$STATE"
    if daemons_running && case $(node_state) in idle|mixed|allocated) true ;; *) false ;; esac; then
        log "already running (SLURM_CONF=$CONF)"
        return 0
    fi
    # A half-started cluster (one daemon died): start over cleanly.
    stop_daemons
    local auth=${MCSIM_SLURM_AUTH:-munge}
    if [ "$auth" = munge ] && ! start_munge; then
        log "munged could not be started; falling back to AuthType=auth/none"
        auth=none
    fi
    write_conf "$auth"
    # -i: ignore state left by an earlier run of this folder (old jobs, old node state).
    if ! slurmctld -i -f "$CONF" || ! slurmd -f "$CONF" -N "$NODE"; then
        log "a daemon failed to start; logs follow"
        tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
        return 1
    fi
    local state
    for _ in $(seq 300); do
        state=$(node_state)
        # "idle*" means the node has not registered yet.
        if [ "$state" = idle ]; then
            log "up: node $NODE idle, auth $auth (SLURM_CONF=$CONF)"
            return 0
        fi
        sleep 0.1
    done
    log "node did not become idle (state '${state:-}'); logs follow"
    tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
    return 1
}

stop_daemons() {
    stop_pidfile "$STATE/slurmd.pid" slurmd
    stop_pidfile "$STATE/slurmctld.pid" slurmctld
    stop_pidfile "$MUNGE_DIR/munged.pid" munged
}

stop() {
    if pid_alive "$STATE/slurmctld.pid" slurmctld; then
        # Cancel this cluster's jobs first so that no job step outlives the daemons.
        local jobs
        jobs=$(squeue -h -o %A 2>/dev/null || true)
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 100); do
                [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
                sleep 0.1
            done
        fi
    fi
    stop_daemons
    log "stopped"
}

status() {
    local ok=0
    if pid_alive "$STATE/slurmctld.pid" slurmctld; then echo "slurmctld: running"; else echo "slurmctld: stopped"; ok=1; fi
    if pid_alive "$STATE/slurmd.pid" slurmd; then echo "slurmd: running"; else echo "slurmd: stopped"; ok=1; fi
    if pid_alive "$MUNGE_DIR/munged.pid" munged; then echo "munged: running"; else echo "munged: stopped"; fi
    if [ "$ok" -eq 0 ]; then
        echo "node: $(node_state)"
        echo "SLURM_CONF=$CONF"
    fi
    return "$ok"
}

case $cmd in
    install) need_root; install ;;
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    -h|--help|help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" ;;
    *) die "unknown command '$cmd' (install, start, stop, restart, status, env)" ;;
esac
