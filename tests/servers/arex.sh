#!/usr/bin/env bash
# A real ARC CE (NorduGrid A-REX 6.x from Debian, fork back end) on 127.0.0.1 for the AREX computing
# element tests, run by hand without systemd.
#
#   tests/servers/arex.sh start           install nordugrid-arc-arex if missing, make the CA and the host
#                                         certificate, start A-REX and its REST interface (idempotent)
#   tests/servers/arex.sh stop            stop both arched processes
#   tests/servers/arex.sh status          exit 0 and print the settings while the REST interface answers, else 3
#   tests/servers/arex.sh env             the settings as shell assignments (AREX_URL=...)
#   tests/servers/arex.sh trust CERTDIR   trust the CAs of CERTDIR (<hash>.N files, e.g. a grid's certificates
#                                         directory) or of a PEM file, for client certificates and proxies and for
#                                         the HTTPS of token issuers, without a restart
#   tests/servers/arex.sh allow DN...     authorise these certificate subjects (openssl /O=.../CN=... form)
#   tests/servers/arex.sh tokens ISSUER AUDIENCE
#                                         authorise the bearer tokens of ISSUER for AUDIENCE (any subject, scope and
#                                         group); A-REX restarts when it runs. The issuer's
#                                         HTTPS CA must be trusted (trust PEMFILE) and its access tokens RS256
#   tests/servers/arex.sh grant PATH...   let the job user traverse the directories leading to PATH (ACL, x only)
#   tests/servers/arex.sh revoke          remove the grants
#
# Needs root: A-REX maps every authorised subject to the local user DIRAC_TEST_AREX_USER (default
# diracarc, created if missing) and the fork back end runs the jobs as that user. State (CA, host
# certificate, arc.conf, control and session directories, logs, pids): DIRAC_TEST_AREX_DIR, default
# /tmp/dirac-seed-arex. Port: DIRAC_TEST_AREX_PORT, else a free port chosen at the first start and kept.
# The CA is the project's (dirac-ca, run with DIRAC_PYTHON, default the checkout's .venv/bin/python).
# DIRAC_TEST_AREX_LOGLEVEL: A-REX's log level (default 3; 5 logs every token check, see ws-interface.log).
#
# Tokens. A-REX 6 fetches a token issuer's discovery document and keys over HTTPS with a client that
# ignores x509_cert_dir and $X509_CERT_DIR: it always reads /etc/grid-security/certificates. So the two
# arched processes run in a private mount namespace where our certificates directory is bind-mounted on
# /etc/grid-security/certificates (nothing changes for the rest of the machine). Where namespaces are not
# allowed (e.g. a container without CAP_SYS_ADMIN), or with DIRAC_TEST_AREX_TRUST_MODE=system, our CA
# files are copied into /etc/grid-security/certificates instead (under free <hash>.N names, listed in
# $STATE/system-certificates) and removed again by stop. A-REX 6.17 reads only RSA keys from an issuer's
# JWKS (an EC key is "JWSE::ExtractPublicKey: key parsing error", then 403): ES256 tokens are refused.
#
# Three deviations from a packaged start, all in generated copies of its scripts: the information
# provider (where the REST interface reads job states from) runs every DIRAC_TEST_AREX_INFO_PERIOD
# seconds (default 10; A-REX's default is 60), the WS/REST listener is
# bound to 127.0.0.1 (the packaged start script listens on every interface; we patch a copy of it to
# add <tcp:Interface>), and the DH parameters A-REX wants are made with `openssl dhparam -dsaparam`
# at once (the packaged script starts a 4096-bit safe-prime search in the background, minutes of CPU).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="${DIRAC_TEST_AREX_DIR:-/tmp/dirac-seed-arex}"
JOB_USER="${DIRAC_TEST_AREX_USER:-diracarc}"
PYTHON="${DIRAC_PYTHON:-$ROOT/.venv/bin/python}"
CONF="$STATE/arc.conf"
CERTS="$STATE/certificates"
QUEUE="${DIRAC_TEST_AREX_QUEUE:-default}"
INFO_PERIOD="${DIRAC_TEST_AREX_INFO_PERIOD:-10}"
LOGLEVEL="${DIRAC_TEST_AREX_LOGLEVEL:-3}"
SYSTEM_CERTS=/etc/grid-security/certificates

[ "$(id -u)" = 0 ] || { echo "$0 needs root (A-REX runs jobs as the mapped user)" >&2; exit 1; }

alive() {  # alive PIDFILE: the process of the pid file runs and is arched
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && grep -q arched "/proc/$(cat "$1")/cmdline" 2>/dev/null
}

port() { cat "$STATE/port"; }

answers() {  # the REST interface answers HTTPS with our host certificate (403 without a client certificate)
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$STATE/ca/cacert.pem" \
        "https://localhost:$(port)/arex/rest" 2>/dev/null)" || true
    [ -n "$code" ] && [ "$code" != 000 ]
}

running() { alive "$STATE/run/arex.pid" && alive "$STATE/run/arex-ws.pid" && answers; }

settings() {
    echo "AREX_HOST=localhost"
    echo "AREX_PORT=$(port)"
    echo "AREX_URL=https://localhost:$(port)/arex/rest/1.0"
    echo "AREX_QUEUE=$QUEUE"
    echo "AREX_CA_DIR=$STATE/ca"
    echo "AREX_CERTIFICATES=$CERTS"
    echo "AREX_JOB_USER=$JOB_USER"
    echo "AREX_LOGS=$STATE/log"
    echo "AREX_CONTROL_DIR=$STATE/control"
}

install_arex() {
    [ -x /usr/sbin/arched ] && [ -x /usr/share/arc/arc-arex-ws-start ] && command -v curl >/dev/null \
        && command -v openssl >/dev/null && return 0
    echo ">>> installing nordugrid-arc-arex" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nordugrid-arc-arex curl openssl \
        >/dev/null
    # the package's init scripts are refused by policy-rc.d here: nothing system-wide is started
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

make_credentials() {
    if [ ! -s "$STATE/ca/cacert.pem" ]; then
        "$PYTHON" -m dirac.FrameworkSystem.scripts.dirac_ca init --dir "$STATE/ca" \
            --subject "/O=DIRAC-Seed/CN=DIRAC Seed AREX Test CA" --certificates-dir "$CERTS" >/dev/null
    fi
    # a fresh start trusts our CA only and authorises nobody: earlier trust/allow calls are forgotten
    rm -rf "$CERTS"
    "$PYTHON" -c 'import sys; from dirac.Core.Security.CA import CertificateAuthority as CA
CA(sys.argv[1]).installInCertificatesDir(sys.argv[2])' "$STATE/ca" "$CERTS"
    : > "$STATE/allowed-subjects"
    : > "$STATE/token-issuers"
    if [ ! -s "$STATE/host/hostcert.pem" ]; then
        "$PYTHON" -m dirac.FrameworkSystem.scripts.dirac_ca host localhost --dir "$STATE/ca" \
            --out-dir "$STATE/host" >/dev/null
    fi
}

write_config() {
    local access=testers tokenmap="" issuer audience
    if [ -s "$STATE/token-issuers" ]; then
        access="testers tokens"
        tokenmap="map_to_user = tokens $JOB_USER:$JOB_USER"
    fi
    cat > "$CONF" <<EOF
# generated by tests/servers/arex.sh: a one-host ARC CE for tests
[common]
hostname = localhost
x509_host_key = $STATE/host/hostkey.pem
x509_host_cert = $STATE/host/hostcert.pem
x509_cert_dir = $CERTS

EOF
    if [ -s "$STATE/token-issuers" ]; then  # [authtokens] turns A-REX's token handler on
        printf '[authtokens]\n\n[authgroup:tokens]\n' >> "$CONF"
        while read -r issuer audience; do
            echo "authtokens = * $issuer $audience * *" >> "$CONF"  # subject issuer audience scope group
        done < "$STATE/token-issuers"
        echo >> "$CONF"
    fi
    cat >> "$CONF" <<EOF
[authgroup:testers]
file = $STATE/allowed-subjects

[mapping]
map_to_user = testers $JOB_USER:$JOB_USER
$tokenmap
policy_on_nomap = stop

[lrms]
lrms = fork

[arex]
controldir = $STATE/control
sessiondir = $STATE/session
logfile = $STATE/log/arex.log
joblog = $STATE/log/arex-jobs.log
pidfile = $STATE/run/arex.pid
tmpdir = $STATE/tmp
loglevel = $LOGLEVEL
wakeupperiod = 5

[arex/ws]
wsurl = https://localhost:$(port)/arex
logfile = $STATE/log/ws-interface.log
pidfile = $STATE/run/arex-ws.pid

[arex/ws/jobs]
allowaccess = $access

[infosys]
logfile = $STATE/log/infoprovider.log

[infosys/glue2]

[infosys/cluster]

[queue:$QUEUE]
EOF
}

start() {
    if running; then
        settings
        return 0
    fi
    install_arex
    mkdir -p "$STATE"/{run,log,control,session}
    install -d -m 1777 "$STATE/tmp"  # A-REX's validator wants the sticky bit
    chmod 755 "$STATE"
    if ! id "$JOB_USER" >/dev/null 2>&1; then
        useradd --create-home --shell /bin/bash "$JOB_USER"
    fi
    make_credentials
    [ -s "$STATE/port" ] || echo "${DIRAC_TEST_AREX_PORT:-$(free_port)}" > "$STATE/port"
    if [ -z "${DIRAC_TEST_AREX_PORT:-}" ] && ! alive "$STATE/run/arex-ws.pid" \
        && (exec 3<>"/dev/tcp/127.0.0.1/$(port)") 2>/dev/null; then
        free_port > "$STATE/port"  # the kept port was taken meanwhile
    fi
    launch
}

trust_mode() {  # namespace (our certificates bind-mounted for arched only) or system (copied, see the header)
    if [ -n "${DIRAC_TEST_AREX_TRUST_MODE:-}" ]; then
        echo "$DIRAC_TEST_AREX_TRUST_MODE"
    elif unshare --mount --propagation private true 2>/dev/null; then
        echo namespace
    else
        echo system
    fi
}

run_start_script() {  # run_start_script NAME: $STATE/NAME (a copy of a packaged start script), with our trust
    if [ "$(trust_mode)" = namespace ]; then
        (cd "$STATE" && ARC_CONFIG="$CONF" TMPDIR="$STATE/tmp" unshare --mount --propagation private \
            sh -c 'mount --bind "$1" "$2" && exec "$3"' sh "$CERTS" "$SYSTEM_CERTS" "$STATE/$1") \
            >"$STATE/log/$1.out" 2>&1
    else
        (cd "$STATE" && ARC_CONFIG="$CONF" TMPDIR="$STATE/tmp" "$STATE/$1") >"$STATE/log/$1.out" 2>&1
    fi
}

sync_system_trust() {  # system mode: our CA files copied into /etc/grid-security/certificates, once each
    local file name hash index target
    [ "$(trust_mode)" = system ] || return 0
    touch "$STATE/system-certificates"
    for file in "$CERTS"/*.[0-9]; do
        [ -f "$file" ] || continue
        name="$(basename "$file")"
        grep -q "^$name " "$STATE/system-certificates" && continue
        hash="${name%.*}"
        index=0
        while [ -e "$SYSTEM_CERTS/$hash.$index" ]; do index=$((index + 1)); done
        target="$SYSTEM_CERTS/$hash.$index"
        install -m 644 "$file" "$target"
        echo "$name $target" >> "$STATE/system-certificates"
    done
}

unsync_system_trust() {
    local name target
    [ -f "$STATE/system-certificates" ] || return 0
    while read -r name target; do
        rm -f "$target"
    done < "$STATE/system-certificates"
    rm -f "$STATE/system-certificates"
}

launch() {  # start both arched processes with the current state (trusted CAs, subjects, token issuers)
    # the issuers' keys are fetched with /etc/grid-security/certificates: a mount point in namespace mode
    mkdir -p "$SYSTEM_CERTS"
    unsync_system_trust
    sync_system_trust
    write_config
    alive "$STATE/run/arex.pid" || alive "$STATE/run/arex-ws.pid" || rm -f "$STATE"/tmp/arex.xml.*
    [ -s "$STATE/control/dhparam.pem" ] || openssl dhparam -dsaparam -out "$STATE/control/dhparam.pem" 2048 2>/dev/null
    sed 's|<tcp:Listen><tcp:Port>\$arex_port</tcp:Port></tcp:Listen>|<tcp:Listen><tcp:Interface>127.0.0.1</tcp:Interface><tcp:Port>$arex_port</tcp:Port></tcp:Listen>|' \
        /usr/share/arc/arc-arex-ws-start > "$STATE/arc-arex-ws-start"
    grep -q "<tcp:Interface>127.0.0.1" "$STATE/arc-arex-ws-start" \
        || { echo "cannot bind A-REX to 127.0.0.1: the packaged arc-arex-ws-start changed" >&2; return 1; }
    chmod 755 "$STATE/arc-arex-ws-start"
    # both start scripts end by exec'ing arched, which daemonises; their temporary arched.xml go to TMPDIR
    # job states reach the REST interface through the information provider, which A-REX runs every
    # 60 s by default: every INFO_PERIOD seconds here, so that tests see state changes soon
    sed "s|<arex:gmconfig>\$ARC_RUNTIME_CONFIG</arex:gmconfig>|&<arex:InfoproviderWakeupPeriod>$INFO_PERIOD</arex:InfoproviderWakeupPeriod>|" \
        /usr/share/arc/arc-arex-start > "$STATE/arc-arex-start"
    grep -q "InfoproviderWakeupPeriod>$INFO_PERIOD<" "$STATE/arc-arex-start" \
        || { echo "cannot set A-REX's information period: the packaged arc-arex-start changed" >&2; return 1; }
    chmod 755 "$STATE/arc-arex-start"
    alive "$STATE/run/arex.pid" || run_start_script arc-arex-start \
        || { echo "A-REX did not start:" >&2; cat "$STATE/log/arc-arex-start.out" >&2; return 1; }
    alive "$STATE/run/arex-ws.pid" || run_start_script arc-arex-ws-start \
        || { echo "the A-REX REST interface did not start:" >&2; cat "$STATE/log/arc-arex-ws-start.out" >&2
             return 1; }
    for _ in $(seq 100); do
        if running; then
            settings
            return 0
        fi
        sleep 0.2
    done
    echo "A-REX does not answer on https://localhost:$(port)/arex/rest; its logs ($STATE/log):" >&2
    tail -n 20 "$STATE/log/arex.log" "$STATE/log/ws-interface.log" >&2 || true
    return 1
}

stop_one() {
    local pidfile="$1" pid
    if alive "$pidfile"; then
        pid="$(cat "$pidfile")"
        kill -TERM "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$pidfile"
}

stop() {
    stop_one "$STATE/run/arex-ws.pid"
    stop_one "$STATE/run/arex.pid"
    unsync_system_trust
}

trust() {
    # copy each CA certificate (and its CRL) under a free <hash>.N: the project's CAs share one subject
    local source="$1" cert hash index target certs
    mkdir -p "$CERTS"
    if [ -f "$source" ]; then certs=("$source"); else certs=("$source"/*.[0-9]); fi
    for cert in "${certs[@]}"; do
        [ -f "$cert" ] || continue
        hash="$(openssl x509 -noout -hash -in "$cert")"
        index=0
        while [ -e "$CERTS/$hash.$index" ] && ! cmp -s "$cert" "$CERTS/$hash.$index"; do
            index=$((index + 1))
        done
        target="$CERTS/$hash.$index"
        install -m 644 "$cert" "$target"
        if [ -f "${cert%.*}.r${cert##*.}" ]; then
            install -m 644 "${cert%.*}.r${cert##*.}" "$CERTS/$hash.r$index"
        fi
    done
    if alive "$STATE/run/arex-ws.pid"; then sync_system_trust; fi
}

tokens() {
    local issuer="$1" audience="$2"
    case "$issuer" in
        https://*) ;;
        *) echo "the issuer must be an https:// URL (A-REX fetches its keys over HTTPS): $issuer" >&2; return 2 ;;
    esac
    [ -n "$audience" ] && [[ "$audience$issuer" != *[[:space:]]* ]] \
        || { echo "usage: $0 tokens ISSUER AUDIENCE (no spaces)" >&2; return 2; }
    touch "$STATE/token-issuers"
    grep -qxF "$issuer $audience" "$STATE/token-issuers" && return 0
    echo "$issuer $audience" >> "$STATE/token-issuers"
    if alive "$STATE/run/arex.pid" || alive "$STATE/run/arex-ws.pid"; then  # arc.conf is read at start
        stop_one "$STATE/run/arex-ws.pid"
        stop_one "$STATE/run/arex.pid"
        launch >/dev/null
    fi
}

allow() {
    local dn
    touch "$STATE/allowed-subjects"
    for dn in "$@"; do
        grep -qxF "\"$dn\"" "$STATE/allowed-subjects" || echo "\"$dn\"" >> "$STATE/allowed-subjects"
    done
}

grant() {
    command -v setfacl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq acl >/dev/null
    mkdir -p "$STATE"
    local path dir
    for path in "$@"; do
        dir="$(readlink -f "$path")"
        [ -d "$dir" ] || dir="$(dirname "$dir")"
        local ancestors=()
        while [ "$dir" != "/" ]; do
            ancestors=("$dir" "${ancestors[@]}")
            dir="$(dirname "$dir")"
        done
        for dir in "${ancestors[@]}"; do  # from the top: a directory is only reachable through its parents
            if ! su -s /bin/sh "$JOB_USER" -c "cd '$dir'" 2>/dev/null; then
                setfacl -m "u:$JOB_USER:x" "$dir"
                echo "$dir" >> "$STATE/grants"
            fi
        done
    done
}

revoke() {
    if [ -f "$STATE/grants" ]; then
        while read -r dir; do
            setfacl -x "u:$JOB_USER" "$dir" 2>/dev/null || true
        done < "$STATE/grants"
        rm -f "$STATE/grants"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if [ -s "$STATE/port" ] && running; then settings; else echo "A-REX is not running" >&2; exit 3; fi ;;
    env) settings ;;
    trust) shift; for dir in "$@"; do trust "$dir"; done ;;
    allow) shift; allow "$@" ;;
    tokens) shift; [ $# = 2 ] || { echo "usage: $0 tokens ISSUER AUDIENCE" >&2; exit 2; }; tokens "$@" ;;
    grant) shift; grant "$@" ;;
    revoke) revoke ;;
    *) echo "usage: $0 start|stop|status|env|trust CERTDIR|PEMFILE...|allow DN...|tokens ISSUER AUDIENCE|grant PATH...|revoke" >&2
       exit 2 ;;
esac
