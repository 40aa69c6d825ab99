# Shell functions shared by the test-server scripts (sourced, not run): the project's Python, ports, a host
# certificate from a project CA, stopping a process by its pid file.
#   . "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -n "${DIRAC_PYTHON:-}" ]; then
    PYTHON="$DIRAC_PYTHON"
elif [ -x "$REPO/.venv/bin/python" ]; then
    PYTHON="$REPO/.venv/bin/python"
else
    PYTHON=python3
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

keep_port() {  # keep_port FILE WANTED: WANTED, else the port kept in FILE, else (first start, or taken) a free one
    if [ -n "$2" ]; then
        echo "$2" > "$1"
    elif [ ! -s "$1" ] || listening "$(cat "$1")"; then
        free_port > "$1"
    fi
}

host_certificate() {  # host_certificate STATE CA SUBJECT: STATE/host/host{cert,key}.pem of localhost from the
    # project CA in directory CA (created with SUBJECT when missing); STATE/certificates trusts that CA only
    local state=$1 ca=$2 subject=$3
    if [ ! -s "$ca/cacert.pem" ]; then
        "$PYTHON" -m dirac.FrameworkSystem.scripts.dirac_ca init --dir "$ca" --subject "$subject" \
            --certificates-dir "$state/certificates" >/dev/null
    fi
    rm -rf "$state/certificates"
    "$PYTHON" -c 'import sys; from dirac.Core.Security.CA import CertificateAuthority as CA
CA(sys.argv[1]).installInCertificatesDir(sys.argv[2])' "$ca" "$state/certificates"
    "$PYTHON" -m dirac.FrameworkSystem.scripts.dirac_ca host localhost --dir "$ca" --out-dir "$state/host" >/dev/null
    echo "$ca" > "$state/ca-dir"
}

alive_pid() {  # alive_pid PIDFILE NAME: the process of PIDFILE runs and its command line names NAME
    [ -f "$1" ] || return 1
    local pid
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q "$2" "/proc/$pid/cmdline" 2>/dev/null
}

stop_pid() {  # stop_pid PIDFILE NAME TENTHS: SIGTERM, SIGKILL after TENTHS tenths of a second; the pid file goes
    if alive_pid "$1" "$2"; then
        local pid
        pid="$(cat "$1")"
        kill -TERM "$pid"
        for _ in $(seq "$3"); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$1"
}

running_with_ca() {  # running_with_ca CA: 0 when the script's server runs with a certificate of CA; else it is
    # stopped (another CA is wanted, or it is half up), to be started afresh. Uses the script's running and stop.
    if running && [ "$(cat "$STATE/ca-dir" 2>/dev/null)" = "$1" ]; then
        return 0
    fi
    stop
    return 1
}
