#!/usr/bin/env bash
# A real, single-node SLURM cluster on this machine, for testing the SLURM profiles.
#
#   scripts/slurm_local.sh start    install slurm-wlm + munge if missing, write
#                                   /etc/slurm/slurm.conf, start munged, slurmctld and
#                                   slurmd, wait until the node is idle (idempotent)
#   scripts/slurm_local.sh stop     stop what `start` started (idempotent)
#   scripts/slurm_local.sh status   print the daemons and `sinfo`; exit 0 if healthy
#
# There is no systemd: the daemons are started by hand and daemonise themselves.
# Their pid files live in $STATE_DIR, their logs in /var/log/slurm/ (munged's in
# /var/log/munge/). All traffic stays on the loopback address.
#
# The node has CPUs=$(nproc), RealMemory a bit under the machine's, and the Features
# the profiles constrain on: haswell, knl, quad, cache (Cori's `knl,quad,cache`) and
# cpu (Perlmutter). There is no GPU and no `gpu` feature. Partitions: regular
# (default) and debug. There is no accounting database, so `sacct` returns nothing:
# MinJobAge=3600 keeps finished jobs in `squeue` for an hour, which is what
# snakemake-executor-plugin-slurm's `--slurm-status-command squeue` needs.
#
# Environment (all optional):
#   REALFAKE_SLURM_TIMEOUT   seconds to wait for the node to become idle (default 90)
#   REALFAKE_SLURM_FEATURES  node features (default haswell,knl,quad,cache,cpu)
#   REALFAKE_SLURM_MPI       MpiDefault (default pmi2: a plain `srun -n 2` of an mpi4py
#                            program then gives one COMM_WORLD of size 2, as at NERSC;
#                            with `none` each rank is a singleton of size 1)
#
# Runs as root; re-runs itself with sudo otherwise (`status` works as any user).
set -euo pipefail

readonly PROG="slurm_local"
readonly STATE_DIR=/run/realfake-slurm
readonly CONF=/etc/slurm/slurm.conf
readonly LOG_DIR=/var/log/slurm
readonly CTLD_PIDFILE=$STATE_DIR/slurmctld.pid
readonly SLURMD_PIDFILE=$STATE_DIR/slurmd.pid
readonly MUNGED_PIDFILE=/run/munge/munged.pid
readonly MUNGE_KEY=/etc/munge/munge.key
# Present while munged is running because this script started it (`stop` stops it then).
readonly MUNGED_OURS=$STATE_DIR/munged.started-here
# Written by `stop`, removed by `start`: the last shutdown was clean.
readonly CLEAN_STOP=$STATE_DIR/stopped-cleanly
readonly TIMEOUT=${REALFAKE_SLURM_TIMEOUT:-90}
readonly FEATURES=${REALFAKE_SLURM_FEATURES:-haswell,knl,quad,cache,cpu}
readonly MPI_DEFAULT=${REALFAKE_SLURM_MPI:-pmi2}
readonly PACKAGES=(slurm-wlm munge)

log() { echo "$PROG: $*"; }
die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

as_root() {
    # Re-run the whole script as root with sudo when needed.
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "must run as root (and sudo is not installed)"
        exec sudo -E -- bash "$0" "$@"
    fi
}

node_name() {
    local h
    h=$(hostname -s 2>/dev/null || true)
    [[ -n $h ]] || h=$(uname -n)
    echo "${h%%.*}"
}

# Whether pid $1 is a live (not zombie) process called $2. Zombies matter here: where
# PID 1 does not reap orphans (as in some containers), a stopped daemon stays a zombie.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # /proc/PID/stat: "PID (comm) STATE ..."; comm is at most 15 characters.
    [[ $stat == "$1 ($2) "* ]] || return 1
    [[ ${stat#"$1 ($2) "} != Z* ]]
}

# The pid of a running process called $1: from pid file $2 if that is alive and has
# that name, else the oldest live process of that name (started without this script).
daemon_pid() {
    local name=$1 pidfile=$2 pid=""
    if [[ -r $pidfile ]]; then
        pid=$(tr -cd '0-9' <"$pidfile" 2>/dev/null || true)
        if [[ -n $pid ]] && alive "$pid" "$name"; then
            echo "$pid"
            return 0
        fi
    fi
    # No procps on a bare Debian: scan /proc by hand.
    local dir best=""
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        if alive "$pid" "$name" && [[ -z $best || $pid -lt $best ]]; then best=$pid; fi
    done
    [[ -n $best ]] || return 1
    echo "$best"
}

# Whether daemon $1 (pid file $2) is not running, checked three times over a second:
# a daemonising process forks, and one look at /proc can fall between parent and child.
not_running() {
    local i
    for i in 1 2 3; do
        daemon_pid "$1" "$2" >/dev/null && return 1
        sleep 0.3
    done
    return 0
}

# Stop process $1 (pid file $2): SIGTERM, then SIGKILL after 15 s. Silent if not running.
stop_daemon() {
    local name=$1 pidfile=$2 pid i
    if ! pid=$(daemon_pid "$name" "$pidfile"); then
        rm -f "$pidfile"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        alive "$pid" "$name" || break
        sleep 0.1
    done
    if alive "$pid" "$name"; then
        log "$name did not stop on SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
}

show_logs() {
    local f
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        [[ -r $f ]] || continue
        echo "----- last lines of $f -----" >&2
        tail -n 25 "$f" >&2 || true
    done
}

fail_with_logs() {
    echo "$PROG: error: $*" >&2
    show_logs
    exit 1
}

# One start/stop at a time. The daemons are started with fd 9 closed (`9>&-`), or
# they would hold the lock for ever.
take_lock() {
    install -d -m 755 "$STATE_DIR"
    exec 9>"$STATE_DIR/lock"
    flock -w 300 9 || die "another slurm_local.sh holds $STATE_DIR/lock"
}

package_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]} (apt-get)"
    # Keep the packages' maintainer scripts from starting the daemons themselves:
    # this script starts (and stops) them.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    local rc=0
    {
        apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    } || rc=$?
    ((made_policy)) && rm -f "$policy"
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (status $rc)"
}

setup_munge() {
    getent passwd munge >/dev/null || die "the munge user is missing (is the munge package installed?)"
    install -d -m 700 -o munge -g munge /etc/munge
    install -d -m 700 -o munge -g munge /var/lib/munge
    install -d -m 700 -o munge -g munge /var/log/munge
    install -d -m 755 -o munge -g munge /run/munge
    if [[ ! -s $MUNGE_KEY ]]; then
        log "creating $MUNGE_KEY"
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
    # munged refuses a key that others can read.
    chown munge:munge "$MUNGE_KEY"
    chmod 400 "$MUNGE_KEY"

    if daemon_pid munged "$MUNGED_PIDFILE" >/dev/null; then
        return 0
    fi
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    log "starting munged"
    setsid runuser -u munge -- /usr/sbin/munged </dev/null 9>&- >>/var/log/munge/munged.stdout 2>&1 ||
        fail_with_logs "munged failed to start"
    touch "$MUNGED_OURS"
    local i
    for ((i = 0; i < 50; i++)); do
        if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    fail_with_logs "munged is not answering (munge -n | unmunge fails)"
}

# The memory for RealMemory: 95% of what the kernel reports, in MB (slurmd drains a
# node that claims more than it has).
real_memory_mb() {
    local kb
    kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    echo $((kb * 95 / 100 / 1024))
}

render_conf() {
    local host=$1 cpus=$2 mem=$3
    cat <<EOF
# Written by scripts/slurm_local.sh (realfake): a single-node test cluster.
# Re-running the script overwrites this file; edit the script instead.
ClusterName=local
SlurmctldHost=${host}(127.0.0.1)
AuthType=auth/munge
CryptoType=crypto/munge
SlurmUser=root
SlurmctldPidFile=${CTLD_PIDFILE}
SlurmdPidFile=${SLURMD_PIDFILE}
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No systemd and no cgroup set-up: plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# pmi2: MPICH (the venv's, or a system one) wires up its ranks from srun's PMI-2
# server, so srun -n 2 of an mpi4py program is one MPI job of 2 ranks.
MpiDefault=${MPI_DEFAULT}
ReturnToService=2
SchedulerType=sched/backfill
# Start batch jobs at once (default: up to 3 s later), for quick tests.
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
# No accounting database: sacct has nothing. Finished jobs stay in squeue for an hour,
# for squeue-based status checks (snakemake --slurm-status-command squeue).
AccountingStorageType=accounting_storage/none
MinJobAge=3600
KillWait=5
MailProg=/bin/true
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} Features=${FEATURES} State=UNKNOWN
PartitionName=regular Nodes=${host} Default=YES MaxTime=INFINITE State=UP
PartitionName=debug Nodes=${host} MaxTime=INFINITE State=UP
EOF
}

ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

# The node's state as sinfo prints it (idle, mixed, allocated, down*, drained, ...).
node_state() { sinfo -h -N -n "$1" -o '%T' 2>/dev/null | head -n 1; }

healthy_state() { [[ $1 =~ ^(idle|mixed|allocated|completing)$ ]]; }

start_slurmctld() {
    log "starting slurmctld"
    setsid /usr/sbin/slurmctld </dev/null 9>&- >>"$LOG_DIR/slurmctld.stdout" 2>&1 ||
        fail_with_logs "slurmctld failed to start"
    local deadline=$((SECONDS + TIMEOUT))
    until ctld_up; do
        ((SECONDS < deadline)) || fail_with_logs "slurmctld did not answer 'scontrol ping' within ${TIMEOUT} s"
        not_running slurmctld "$CTLD_PIDFILE" && fail_with_logs "slurmctld exited"
        sleep 0.5
    done
}

start_slurmd() {
    log "starting slurmd"
    setsid /usr/sbin/slurmd </dev/null 9>&- >>"$LOG_DIR/slurmd.stdout" 2>&1 ||
        fail_with_logs "slurmd failed to start"
}

# When slurmd on node $1 last registered, in seconds since the epoch (0 if never).
slurmd_start_epoch() {
    local t
    t=$(scontrol -o show node "$1" 2>/dev/null | grep -o 'SlurmdStartTime=[^ ]*' | cut -d= -f2)
    date -d "$t" +%s 2>/dev/null || echo 0
}

# Wait until node $1 is idle (or running jobs) and, when $2 is given, its slurmd has
# registered since time $2 (after a restart, slurmctld shows the recovered state first).
wait_node_healthy() {
    local host=$1 since_epoch=${2:-0} deadline=$((SECONDS + TIMEOUT)) state resumed=0 since=$SECONDS
    while :; do
        state=$(node_state "$host")
        if healthy_state "$state" && (($(slurmd_start_epoch "$host") >= since_epoch)); then
            return 0
        fi
        ((SECONDS < deadline)) ||
            fail_with_logs "node $host is '${state:-unknown}', not idle, after ${TIMEOUT} s ($(scontrol show node "$host" 2>/dev/null | grep -o 'Reason=.*' || true))"
        not_running slurmd "$SLURMD_PIDFILE" && fail_with_logs "slurmd exited"
        # A node left drained/down by an earlier run: slurmd is up, so resume it once.
        if ((!resumed && SECONDS - since >= 3)) && [[ $state =~ ^(down|drain) && $state != *'*' ]]; then
            log "node $host is $state; resuming it"
            scontrol update NodeName="$host" State=RESUME 2>/dev/null || true
            resumed=1
        fi
        sleep 0.5
    done
}

# After a cold start: cancel the recovered jobs that cannot be what they claim. Jobs
# recovered as running have no processes left. After a crash (no clean `stop`), the
# pending ones are orphans too: whoever submitted them (a test, a Snakemake run) is
# gone, and they would run now and take the node's CPUs.
cancel_stale_jobs() {
    local states=RUNNING,SUSPENDED what="recovered as running, whose processes are gone"
    if [[ ! -e $CLEAN_STOP ]]; then
        states=PENDING,CONFIGURING,$states
        what="left by daemons that did not stop cleanly"
    fi
    local stale
    stale=$(squeue -h -t "$states" -o %i 2>/dev/null | tr '\n' ' ')
    [[ -n ${stale// /} ]] || return 0
    log "cancelling job(s) ${stale% }: $what"
    # shellcheck disable=SC2086  # one job id per word
    scancel $stale || true
}

cmd_start() {
    install_packages
    local host cpus mem
    host=$(node_name)
    cpus=$(nproc)
    mem=$(real_memory_mb)

    install -d -m 755 "$STATE_DIR" "$LOG_DIR" /etc/slurm /var/spool/slurmd
    install -d -m 700 /var/spool/slurmctld
    take_lock

    setup_munge

    local new
    new=$(render_conf "$host" "$cpus" "$mem")
    local ctld_pid="" slurmd_pid="" action="already running, unchanged"
    ctld_pid=$(daemon_pid slurmctld "$CTLD_PIDFILE" || true)
    slurmd_pid=$(daemon_pid slurmd "$SLURMD_PIDFILE" || true)
    # Cold start: no daemon and no job step left (after a crash, a reboot, or CI ending
    # every process). slurmctld then recovers jobs as RUNNING whose processes are gone,
    # and they would hold the node's CPUs for ever: cancel them once it is up. (Not
    # after a restart for a changed configuration: its jobs are alive.)
    local cold=0
    if [[ -z $ctld_pid && -z $slurmd_pid ]] && ! daemon_pid slurmstepd /dev/null >/dev/null; then
        cold=1
    fi
    if [[ ! -f $CONF ]] || [[ $(cat "$CONF") != "$new" ]]; then
        if [[ -n $ctld_pid || -n $slurmd_pid ]]; then
            log "$CONF changed: restarting the SLURM daemons"
            stop_daemon slurmd "$SLURMD_PIDFILE"
            stop_daemon slurmctld "$CTLD_PIDFILE"
            ctld_pid="" slurmd_pid=""
            action="restarted (configuration changed)"
        fi
        log "writing $CONF"
        printf '%s\n' "$new" >"$CONF.tmp"
        chmod 644 "$CONF.tmp"
        mv -f "$CONF.tmp" "$CONF"
    fi
    if [[ -z $ctld_pid ]]; then
        start_slurmctld
        [[ $action == restarted* ]] || action="started"
        if ((cold)); then cancel_stale_jobs; fi
    elif ! ctld_up; then
        fail_with_logs "slurmctld (pid $ctld_pid) runs but does not answer 'scontrol ping'"
    fi
    local slurmd_started=0
    if [[ -z $slurmd_pid ]]; then
        # SlurmdStartTime has one-second resolution.
        slurmd_started=$(($(date +%s) - 1))
        start_slurmd
        [[ $action == restarted* ]] || action="started"
    fi
    wait_node_healthy "$host" "$slurmd_started"
    rm -f "$CLEAN_STOP"

    local version
    version=$(sinfo --version 2>/dev/null | awk '{print $2}')
    log "$action: SLURM ${version:-?} node $host ($(node_state "$host"), CPUs=$cpus, RealMemory=${mem}MB, Features=$FEATURES), partitions regular (default) and debug; logs in $LOG_DIR"
}

cmd_stop() {
    take_lock
    stop_daemon slurmd "$SLURMD_PIDFILE"
    stop_daemon slurmctld "$CTLD_PIDFILE"
    if [[ -e $MUNGED_OURS ]]; then
        stop_daemon munged "$MUNGED_PIDFILE"
        rm -f "$MUNGED_OURS"
    elif daemon_pid munged "$MUNGED_PIDFILE" >/dev/null; then
        log "leaving munged running (not started by this script)"
    fi
    touch "$CLEAN_STOP"
    log "stopped"
}

cmd_status() {
    local ok=0 name pidfile pid
    for name in munged slurmctld slurmd; do
        case $name in
            munged) pidfile=$MUNGED_PIDFILE ;;
            slurmctld) pidfile=$CTLD_PIDFILE ;;
            slurmd) pidfile=$SLURMD_PIDFILE ;;
        esac
        if pid=$(daemon_pid "$name" "$pidfile"); then
            echo "$name: running (pid $pid)"
        else
            echo "$name: not running"
            ok=1
        fi
    done
    if ! command -v sinfo >/dev/null 2>&1; then
        echo "sinfo: not installed"
        return 1
    fi
    local host state
    host=$(node_name)
    if ctld_up; then
        sinfo || true
        state=$(node_state "$host")
        echo "node $host: ${state:-unknown}"
        healthy_state "$state" || ok=1
    else
        echo "slurmctld: not answering"
        ok=1
    fi
    if ((ok == 0)); then echo "healthy"; else echo "not healthy"; fi
    return "$ok"
}

main() {
    (($# == 1)) || usage
    case $1 in
        start)
            as_root "$@"
            cmd_start
            ;;
        stop)
            as_root "$@"
            cmd_stop
            ;;
        status) cmd_status ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
