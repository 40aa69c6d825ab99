#!/usr/bin/env bash
# XRootD servers (Debian's xrootd-server) on this machine for the XROOT Storage Element tests, run by hand
# without systemd.
#
#   tests/servers/xrootd.sh start     install xrootd-server and xrootd-client if missing, start both servers
#                                     (idempotent; another CA than the running servers' restarts them)
#   tests/servers/xrootd.sh stop      stop them
#   tests/servers/xrootd.sh status    exit 0 and print the settings while both run, else exit 3
#   tests/servers/xrootd.sh env       the settings as shell assignments (XROOTD_URL=...)
#
# Two servers share one data directory, <state>/data (XROOTD_ROOT):
#   GSI   (XROOTD_PORT)       clients authenticate with an X509 proxy (or certificate) of the project's CA
#                             (GSI, sec.protbind only gsi); /store is read-write, /readonly read-only (the
#                             acc.authdb of the server: writes there are "not authorized"); checksums:
#                             `xrootd.chksum adler32`, so `xrdfs query checksum` answers Adler32
#   anonymous (XROOTD_ANON_PORT)  no authentication, everything read-only (a public read door)
# Connections are accepted from this host only (xrd.allow host localhost). Clients must connect as
# "localhost": GSI checks the server certificate's CN (localhost) against the host name in the URL.
#
# TLS/GSI: the host certificate is issued by a CA of the project (dirac.Core.Security.CA): the CA in
# DIRAC_TEST_XROOTD_CA (a CA directory, e.g. <instance>/etc/ca of a one-box instance) or else one kept in
# the state directory; the servers trust only that CA (<state>/certificates, XROOTD_CERTIFICATES), not the
# system's. The servers run as the user xrootd (created by the package) when started as root.
#
# State (config, certificates, data, pids, logs): DIRAC_TEST_XROOTD_DIR, default /tmp/dirac-seed-xrootd.
# Ports: DIRAC_TEST_XROOTD_PORT and DIRAC_TEST_XROOTD_ANON_PORT, else free ports chosen at the first start
# and kept.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${DIRAC_TEST_XROOTD_DIR:-/tmp/dirac-seed-xrootd}"
if [ -n "${DIRAC_PYTHON:-}" ]; then
    PYTHON="$DIRAC_PYTHON"
elif [ -x "$REPO/.venv/bin/python" ]; then
    PYTHON="$REPO/.venv/bin/python"
else
    PYTHON=python3
fi
SERVERS="gsi anon"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

run_user() { if [ "$(id -u)" = 0 ]; then echo xrootd; else id -un; fi; }

alive() {  # alive NAME: the server NAME runs (its pid file names a live xrootd)
    local pidfile="$STATE/run/$1/xrootd.pid" pid
    [ -f "$pidfile" ] || return 1
    pid="$(cat "$pidfile" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q xrootd "/proc/$pid/cmdline" 2>/dev/null
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() {
    local name
    for name in $SERVERS; do
        alive "$name" || return 1
    done
    listening "$(cat "$STATE/port-gsi")" && listening "$(cat "$STATE/port-anon")"
}

settings() {
    echo "XROOTD_HOST=localhost"
    echo "XROOTD_PORT=$(cat "$STATE/port-gsi")"
    echo "XROOTD_ANON_PORT=$(cat "$STATE/port-anon")"
    echo "XROOTD_URL=root://localhost:$(cat "$STATE/port-gsi")"
    echo "XROOTD_ANON_URL=root://localhost:$(cat "$STATE/port-anon")"
    echo "XROOTD_ROOT=$STATE/data"
    echo "XROOTD_CA_DIR=$(cat "$STATE/ca-dir")"
    echo "XROOTD_CERTIFICATES=$STATE/certificates"
    echo "XROOTD_USER=$(run_user)"
    echo "XROOTD_LOG=$STATE/run/gsi/xrootd.log"
    echo "XROOTD_ANON_LOG=$STATE/run/anon/xrootd.log"
    echo "XROOTD_PID=$(cat "$STATE/run/gsi/xrootd.pid")"
}

install_server() {
    command -v xrootd >/dev/null && command -v xrdcp >/dev/null && command -v xrdfs >/dev/null \
        && ls /usr/lib/*/libXrdSecgsi-5.so >/dev/null 2>&1 && return 0
    echo ">>> installing xrootd-server and xrootd-client" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        xrootd-server xrootd-client xrootd-plugins >/dev/null
    # the package's init script is not run here (no systemd): nothing system-wide is started
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

choose_port() {  # choose_port NAME WANTED: keep the port of NAME, or take WANTED, or a free one
    local file="$STATE/port-$1"
    if [ -n "$2" ]; then
        echo "$2" > "$file"
    elif [ ! -s "$file" ] || listening "$(cat "$file")"; then
        free_port > "$file"  # the first start, or the kept port was taken meanwhile
    fi
}

wanted_ca() { echo "${DIRAC_TEST_XROOTD_CA:-$STATE/ca}"; }

make_certificates() {
    local ca
    ca="$(wanted_ca)"
    if [ ! -s "$ca/cacert.pem" ]; then
        "$PYTHON" -m dirac.FrameworkSystem.scripts.dirac_ca init --dir "$ca" \
            --subject "/O=DIRAC-Seed/OU=xrootd/CN=DIRAC Seed XRootD test CA" --certificates-dir "$STATE/certificates" \
            >/dev/null
    fi
    rm -rf "$STATE/certificates"  # trust this CA only
    "$PYTHON" -c 'import sys; from dirac.Core.Security.CA import CertificateAuthority as CA
CA(sys.argv[1]).installInCertificatesDir(sys.argv[2])' "$ca" "$STATE/certificates"
    "$PYTHON" -m dirac.FrameworkSystem.scripts.dirac_ca host localhost --dir "$ca" --out-dir "$STATE/host" >/dev/null
    echo "$ca" > "$STATE/ca-dir"
}

library_dir() { dirname "$(ls /usr/lib/*/libXrdSecgsi-5.so | head -1)"; }

write_config() {  # write_config NAME
    local name=$1 port run="$STATE/run/$1"
    port="$(cat "$STATE/port-$name")"
    mkdir -p "$run"
    {
        echo "# generated by tests/servers/xrootd.sh ($name)"
        echo "xrd.port $port"
        echo "xrd.network nodnr"
        echo "xrd.allow host localhost"
        echo "all.adminpath $run"
        echo "all.pidpath $run"
        echo "oss.localroot $STATE/data"
        echo "xrootd.chksum adler32"
        if [ "$name" = gsi ]; then
            echo "all.export /store"
            echo "all.export /readonly"
            echo "xrootd.seclib $(library_dir)/libXrdSec-5.so"
            echo "sec.protocol $(library_dir) gsi -certdir:$STATE/certificates -cert:$STATE/host/hostcert.pem" \
                 "-key:$STATE/host/hostkey.pem -crl:1 -gmapopt:0 -vomsat:0 -ca:1"
            echo "sec.protbind * only gsi"
            echo "ofs.authorize 1"
            echo "acc.authdb $STATE/authdb"
            echo "acc.audit deny"
        else
            echo "all.export /store r/o"
            echo "all.export /readonly r/o"
        fi
    } > "$run/xrootd.cfg"
    # every authenticated identity: all rights under /store, lookup and read under /readonly
    echo "u * /store a /readonly lr" > "$STATE/authdb"
}

start_server() {  # start_server NAME
    local name=$1 run="$STATE/run/$1" user
    user="$(run_user)"
    rm -f "$run/xrootd.pid"
    : > "$run/xrootd.log"
    chown -R "$user:" "$run"
    if [ "$(id -u)" = 0 ]; then
        xrootd -R "$user" -b -c "$run/xrootd.cfg" -l "$run/xrootd.log" -s "$run/xrootd.pid" -k 3
    else
        xrootd -b -c "$run/xrootd.cfg" -l "$run/xrootd.log" -s "$run/xrootd.pid" -k 3
    fi
}

start() {
    local ca name
    ca="$(wanted_ca)"
    if running; then
        if [ "$(cat "$STATE/ca-dir" 2>/dev/null)" = "$ca" ]; then
            settings
            return 0
        fi
        stop  # another CA is wanted: restart with a certificate of that one
    fi
    stop
    install_server
    mkdir -p "$STATE/data/store" "$STATE/data/readonly" "$STATE/run"
    chmod 755 "$STATE" "$STATE/data"
    choose_port gsi "${DIRAC_TEST_XROOTD_PORT:-}"
    choose_port anon "${DIRAC_TEST_XROOTD_ANON_PORT:-}"
    make_certificates
    for name in $SERVERS; do
        write_config "$name"
    done
    chown -R "$(run_user):" "$STATE/data" "$STATE/host"
    chmod 600 "$STATE/host/hostkey.pem"
    for name in $SERVERS; do
        start_server "$name"
    done
    for _ in $(seq 100); do
        if running; then
            settings
            return 0
        fi
        sleep 0.1
    done
    echo "xrootd did not start; its logs:" >&2
    for name in $SERVERS; do
        tail -20 "$STATE/run/$name/xrootd.log" >&2 || true
    done
    return 1
}

stop() {
    local name pid
    for name in $SERVERS; do
        if alive "$name"; then
            pid="$(cat "$STATE/run/$name/xrootd.pid")"
            kill -TERM "$pid"
            for _ in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        fi
        rm -f "$STATE/run/$name/xrootd.pid"
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if [ -d "$STATE/run" ] && running; then settings; else echo "xrootd is not running" >&2; exit 3; fi ;;
    env) settings ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
