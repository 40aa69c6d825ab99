#!/usr/bin/env bash
# A one-node Slurm cluster on this host for the Slurm computing element tests (no systemd).
#
#   tests/servers/slurm.sh start    install slurm-wlm and munge if missing, start munged, slurmctld
#                                   and slurmd (idempotent); prints SLURM_CONF=<path>
#   tests/servers/slurm.sh stop     stop slurmd and slurmctld (and munged if this script started it)
#   tests/servers/slurm.sh status   exit 0 and print SLURM_CONF=<path> while the node takes jobs, else exit 3
#   tests/servers/slurm.sh env      SLURM_CONF=<path>
#
# Needs root. The cluster runs in a container: no cgroups (proctrack/linuxproc, task/none), no
# accounting database (sacct has nothing to say; job states come from squeue). Its configuration is
# not installed in /etc/slurm: commands find it through SLURM_CONF (export it, or set the CE's
# Preamble to `export SLURM_CONF=...`). State: DIRAC_TEST_SLURM_DIR (default /tmp/dirac-seed-slurm).
# Ports: DIRAC_TEST_SLURM_PORT (slurmctld, default 16817) and the next one (slurmd).
set -euo pipefail

STATE="${DIRAC_TEST_SLURM_DIR:-/tmp/dirac-seed-slurm}"
CONF="$STATE/slurm.conf"
CTLD_PORT="${DIRAC_TEST_SLURM_PORT:-16817}"
SLURMD_PORT=$((CTLD_PORT + 1))
NODE="$(hostname -s)"
export SLURM_CONF="$CONF"

[ "$(id -u)" = 0 ] || { echo "$0 needs root (slurmd starts jobs as their users)" >&2; exit 1; }

alive() {  # alive PIDFILE NAME: the process of the pid file runs and is NAME
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && grep -q "$2" "/proc/$(cat "$1")/cmdline" 2>/dev/null
}

munge_works() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

node_ready() {
    alive "$STATE/slurmctld.pid" slurmctld && alive "$STATE/slurmd.pid" slurmd || return 1
    local state
    state="$(sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null | head -1)"
    case "$state" in idle*|mixed*|allocated*|completing*) return 0 ;; *) return 1 ;; esac
}

install_slurm() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return 0
    echo ">>> installing slurm-wlm and munge" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

start_munge() {
    munge_works && return 0
    [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
    chown munge: /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    install -d -o munge -g munge -m 755 /run/munge
    install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
    runuser -u munge -- munged
    touch "$STATE/munged.ours"
    for _ in $(seq 50); do munge_works && return 0; sleep 0.1; done
    echo "munged did not start (see /var/log/munge/munged.log)" >&2
    return 1
}

write_config() {
    # the node as slurmd sees it (CPUs from the machine), without the uptime line
    local node
    node="$(slurmd -C | grep '^NodeName=' | sed "s/^NodeName=[^ ]*/NodeName=$NODE NodeAddr=127.0.0.1/")"
    cat > "$CONF" <<EOF
# one-node test cluster written by tests/servers/slurm.sh
ClusterName=diracseed
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=3600
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
MpiDefault=none
$node State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 644 "$CONF"
    # Slurm >= 23.02 can be told not to touch cgroups at all; 22.05 (Debian 12) has no such value
    # and only loads its cgroup plugin to read the hierarchy (proctrack/task do not use it)
    local version
    version="$(slurmd -V | awk '{print $2}')"
    rm -f "$STATE/cgroup.conf"
    if [ "$(printf '%s\n23.02\n' "$version" | sort -V | head -1)" = "23.02" ]; then
        printf 'CgroupPlugin=disabled\n' > "$STATE/cgroup.conf"
        chmod 644 "$STATE/cgroup.conf"
    fi
}

start() {
    if node_ready; then
        echo "SLURM_CONF=$CONF"
        return 0
    fi
    install_slurm
    mkdir -p "$STATE/ctld" "$STATE/slurmd"
    chmod 755 "$STATE"
    start_munge
    write_config
    alive "$STATE/slurmctld.pid" slurmctld || slurmctld -f "$CONF"
    alive "$STATE/slurmd.pid" slurmd || slurmd -f "$CONF" -N "$NODE"
    for _ in $(seq 150); do
        if node_ready; then
            echo "SLURM_CONF=$CONF"
            return 0
        fi
        sleep 0.2
    done
    scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
    sleep 1
    node_ready && { echo "SLURM_CONF=$CONF"; return 0; }
    echo "the Slurm node did not become ready:" >&2
    sinfo -N -l >&2 || true
    tail -15 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
    return 1
}

stop_pidfile() {  # stop_pidfile PIDFILE NAME
    alive "$1" "$2" || { rm -f "$1"; return 0; }
    local pid
    pid="$(cat "$1")"
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$1"
}

stop() {
    if alive "$STATE/slurmctld.pid" slurmctld; then
        scancel --full --quiet --partition=debug 2>/dev/null || true  # jobs of any user (we are root)
    fi
    stop_pidfile "$STATE/slurmd.pid" slurmd
    stop_pidfile "$STATE/slurmctld.pid" slurmctld
    if [ -f "$STATE/munged.ours" ]; then
        stop_pidfile /run/munge/munged.pid munged
        rm -f "$STATE/munged.ours"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if node_ready; then echo "SLURM_CONF=$CONF"; else echo "the Slurm node is not ready" >&2; exit 3; fi ;;
    env) echo "SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
