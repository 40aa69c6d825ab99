#!/usr/bin/env bash
# An OpenSSH server on 127.0.0.1 for the SSH computing element tests (no systemd).
#
#   tests/servers/sshd.sh start          install openssh-server if missing, start sshd (idempotent)
#   tests/servers/sshd.sh stop           stop sshd and its sessions (processes started with setsid survive)
#   tests/servers/sshd.sh status         exit 0 and print the connection settings while it runs, else exit 3
#   tests/servers/sshd.sh env            the connection settings as shell assignments (SSHD_HOST=...)
#   tests/servers/sshd.sh grant PATH...  let the SSH user traverse the directories leading to PATH (ACL, x only)
#   tests/servers/sshd.sh revoke         remove the grants
#
# Run as root, it logs in a dedicated user (DIRAC_TEST_SSH_USER, default diracpilot, created if
# missing) with a generated ed25519 key; run as another user, it can only log in that user.
# State (host key, client key, config, pid, log): DIRAC_TEST_SSHD_DIR, default /tmp/dirac-seed-sshd.
# Port: DIRAC_TEST_SSHD_PORT, else a free port chosen at the first start and kept.
# `grant` exists because the client Python of a checkout may live under a private home such as
# /root; the grants are recorded, survive `stop` and are removed by `revoke`.
set -euo pipefail

STATE="${DIRAC_TEST_SSHD_DIR:-/tmp/dirac-seed-sshd}"
if [ "$(id -u)" = 0 ]; then
    SSH_USER="${DIRAC_TEST_SSH_USER:-diracpilot}"
else
    SSH_USER="$(id -un)"
fi
PIDFILE="$STATE/sshd.pid"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

running() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q sshd "/proc/$pid/cmdline" 2>/dev/null
}

settings() {
    echo "SSHD_HOST=127.0.0.1"
    echo "SSHD_PORT=$(cat "$STATE/port")"
    echo "SSHD_USER=$SSH_USER"
    echo "SSHD_KEY=$STATE/client_key"
    echo "SSHD_HOST_KEY=$STATE/ssh_host_ed25519_key.pub"
    echo "SSHD_HOME=$(getent passwd "$SSH_USER" | cut -d: -f6)"
}

install_server() {
    [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null && return 0
    echo ">>> installing openssh-server" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        openssh-server openssh-client >/dev/null
    # the package may start a system-wide sshd through its init script: we do not need it
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

prepare_user() {
    local home
    if [ "$(id -u)" = 0 ] && ! id "$SSH_USER" >/dev/null 2>&1; then
        useradd --create-home --shell /bin/bash "$SSH_USER"
    fi
    if [ "$(id -u)" = 0 ]; then
        usermod -p '*' "$SSH_USER"  # no password, but not locked: sshd refuses locked accounts
    fi
    home="$(getent passwd "$SSH_USER" | cut -d: -f6)"
    [ -f "$STATE/client_key" ] || ssh-keygen -q -t ed25519 -N "" -C "dirac-seed-test" -f "$STATE/client_key"
    install -d -m 700 "$home/.ssh"
    cp "$STATE/client_key.pub" "$home/.ssh/authorized_keys"
    chmod 600 "$home/.ssh/authorized_keys"
    if [ "$(id -u)" = 0 ]; then
        chown -R "$SSH_USER:" "$home/.ssh"
    fi
}

start() {
    if running; then
        settings
        return 0
    fi
    install_server
    mkdir -p "$STATE"
    chmod 755 "$STATE"
    [ -f "$STATE/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$STATE/ssh_host_ed25519_key"
    [ -s "$STATE/port" ] || echo "${DIRAC_TEST_SSHD_PORT:-$(free_port)}" > "$STATE/port"
    if [ -z "${DIRAC_TEST_SSHD_PORT:-}" ] && (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$STATE/port")") 2>/dev/null; then
        free_port > "$STATE/port"  # the kept port was taken meanwhile
    fi
    prepare_user
    if [ "$(id -u)" = 0 ]; then
        mkdir -p /run/sshd && chmod 755 /run/sshd  # privilege separation directory
    fi
    cat > "$STATE/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $(cat "$STATE/port")
HostKey $STATE/ssh_host_ed25519_key
PidFile $PIDFILE
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $SSH_USER
UsePAM no
StrictModes yes
MaxStartups 100:30:200
MaxSessions 50
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
    /usr/sbin/sshd -t -f "$STATE/sshd_config"
    rm -f "$PIDFILE"
    /usr/sbin/sshd -f "$STATE/sshd_config" -E "$STATE/sshd.log"
    for _ in $(seq 50); do
        if running && (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$STATE/port")") 2>/dev/null; then
            settings
            return 0
        fi
        sleep 0.1
    done
    echo "sshd did not start; its log ($STATE/sshd.log):" >&2
    tail -20 "$STATE/sshd.log" >&2 || true
    return 1
}

stop() {
    if running; then
        local pid
        pid="$(cat "$PIDFILE")"
        # the sessions are children of the listener: end them too, as a host going down would
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill -TERM "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$PIDFILE"
}

revoke() {
    if [ -f "$STATE/grants" ]; then
        while read -r dir; do
            setfacl -x "u:$SSH_USER" "$dir" 2>/dev/null || true
        done < "$STATE/grants"
        rm -f "$STATE/grants"
    fi
}

grant() {
    [ "$(id -u)" = 0 ] || { echo "grant needs root" >&2; return 1; }
    command -v setfacl >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq acl >/dev/null
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
            if ! su -s /bin/sh "$SSH_USER" -c "cd '$dir'" 2>/dev/null; then
                setfacl -m "u:$SSH_USER:x" "$dir"
                echo "$dir" >> "$STATE/grants"
            fi
        done
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if running; then settings; else echo "sshd is not running" >&2; exit 3; fi ;;
    env) settings ;;
    grant) shift; grant "$@" ;;
    revoke) revoke ;;
    *) echo "usage: $0 start|stop|status|env|grant PATH...|revoke" >&2; exit 2 ;;
esac
