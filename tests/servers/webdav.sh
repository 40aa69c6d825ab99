#!/usr/bin/env bash
# A WebDAV server on 127.0.0.1 for the WebDAV Storage Element tests: Apache httpd with mod_dav_fs,
# mod_ssl and mod_gridsite (so that X509 proxies are accepted as client certificates) and
# mod_auth_openidc (bearer tokens), no systemd.
#
#   tests/servers/webdav.sh start     install apache2 and gridsite if missing, start httpd (idempotent)
#   tests/servers/webdav.sh stop      stop httpd
#   tests/servers/webdav.sh status    exit 0 and print the connection settings while it runs, else exit 3
#   tests/servers/webdav.sh env       the connection settings as shell assignments (WEBDAV_URL=...)
#
# TLS: the server certificate is issued by a CA of the project (dirac.Core.Security.CA): the CA in
# DIRAC_TEST_WEBDAV_CA (a CA directory, e.g. <instance>/etc/ca of a one-box instance) or else one
# kept in the state directory. Clients of /store/, /digest/ and /readonly/ must present a certificate
# or proxy of that CA (others get 403); the CA is also published in <state>/certificates
# (WEBDAV_CERTIFICATES) for the clients to trust. Starting with another CA than the running server's restarts it.
#
# Locations (all served from <state>/data, WEBDAV_ROOT):
#   /store/     read-write WebDAV                      -> <state>/data/store
#   /digest/    the same files, and RFC 3230 "Want-Digest: adler32" answered with a Digest header
#               (tests/servers/webdav_digest.lua; /store/ does not answer it: clients read files back)
#   /readonly/  reads only: PUT, DELETE, MKCOL, ... are refused with 403 -> <state>/data/readonly
#   /token/     the files of /store/ for a bearer token (mod_auth_openidc): a JWT signed RS256 by the key
#               WEBDAV_TOKEN_KEY (kid WEBDAV_TOKEN_KID), issuer WEBDAV_TOKEN_ISSUER, audience "dirac"
#
# State (config, certificates, data, pid, logs): DIRAC_TEST_WEBDAV_DIR, default /tmp/dirac-seed-webdav.
# Port: DIRAC_TEST_WEBDAV_PORT, else a free port chosen at the first start and kept.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${DIRAC_TEST_WEBDAV_DIR:-/tmp/dirac-seed-webdav}"
PIDFILE="$STATE/httpd.pid"
if [ -n "${DIRAC_PYTHON:-}" ]; then
    PYTHON="$DIRAC_PYTHON"
elif [ -x "$REPO/.venv/bin/python" ]; then
    PYTHON="$REPO/.venv/bin/python"
else
    PYTHON=python3
fi
if [ "$(id -u)" = 0 ]; then RUN_USER=www-data; else RUN_USER="$(id -un)"; fi
TOKEN_ISSUER=https://webdav-issuer.test.invalid

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

running() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q apache2 "/proc/$pid/cmdline" 2>/dev/null
}

settings() {
    local port
    port="$(cat "$STATE/port")"
    echo "WEBDAV_HOST=127.0.0.1"
    echo "WEBDAV_PORT=$port"
    echo "WEBDAV_URL=https://127.0.0.1:$port"
    echo "WEBDAV_ROOT=$STATE/data"
    echo "WEBDAV_CA_DIR=$(cat "$STATE/ca-dir")"
    echo "WEBDAV_CERTIFICATES=$STATE/certificates"
    echo "WEBDAV_USER=$RUN_USER"
    echo "WEBDAV_LOG=$STATE/error.log"
    echo "WEBDAV_ACCESS_LOG=$STATE/access.log"
    echo "WEBDAV_TOKEN_ISSUER=$TOKEN_ISSUER"
    echo "WEBDAV_TOKEN_KEY=$STATE/token-issuer.key"
    echo "WEBDAV_TOKEN_KID=webdav-test"
}

install_server() {
    [ -x /usr/sbin/apache2 ] && [ -f /usr/lib/apache2/modules/mod_gridsite.so ] \
        && [ -f /usr/lib/apache2/modules/mod_auth_openidc.so ] && command -v curl >/dev/null && return 0
    # curl: the client the job tests' payloads read https:// TURLs with
    echo ">>> installing apache2, gridsite, mod_auth_openidc and curl" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        apache2 gridsite libapache2-mod-auth-openidc curl >/dev/null
    # the package may start a system-wide apache2 through its init script: we do not need it
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wanted_ca() { echo "${DIRAC_TEST_WEBDAV_CA:-$STATE/ca}"; }

make_certificates() {
    # the host certificate of 127.0.0.1/localhost from the wanted CA (created when it is the state's own)
    local ca
    ca="$(wanted_ca)"
    rm -rf "$STATE/certificates"
    PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" - "$ca" "$STATE" <<'EOF'
import sys
from pathlib import Path

from dirac.Core.Security.CA import CertificateAuthority

caDir, state = Path(sys.argv[1]), Path(sys.argv[2])
ca = CertificateAuthority(caDir)
if ca.exists():
    ca.load()
else:
    ca.create(subject="/O=DIRAC-Seed/OU=webdav/CN=DIRAC Seed WebDAV test CA")
cert, key = ca.issueHostCertificate("localhost", altNames=["localhost", "127.0.0.1"])
(state / "hostcert.pem").write_bytes(cert)
(state / "hostkey.pem").touch(mode=0o600)
(state / "hostkey.pem").write_bytes(key)
ca.installInCertificatesDir(state / "certificates")
EOF
    echo "$ca" > "$STATE/ca-dir"
    # the issuer of the bearer tokens /token/ accepts: its RSA key signs them (RS256, kid webdav-test)
    if [ ! -s "$STATE/token-issuer.pem" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=webdav test token issuer" \
            -keyout "$STATE/token-issuer.key" -out "$STATE/token-issuer.pem" 2>/dev/null
        chmod 600 "$STATE/token-issuer.key"
    fi
    [ -s "$STATE/run/passphrase" ] || openssl rand -hex 16 > "$STATE/run/passphrase"
}

write_config() {
    local port=$1 mods=/usr/lib/apache2/modules
    cat > "$STATE/httpd.conf" <<EOF
ServerRoot "$STATE"
ServerName localhost
PidFile $PIDFILE
Listen 127.0.0.1:$port
User $RUN_USER
Group $(id -gn "$RUN_USER")
ErrorLog $STATE/error.log
LogLevel warn ssl:warn
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule alias_module $mods/mod_alias.so
LoadModule mime_module $mods/mod_mime.so
LoadModule socache_shmcb_module $mods/mod_socache_shmcb.so
LoadModule ssl_module $mods/mod_ssl.so
LoadModule gridsite_module $mods/mod_gridsite.so
LoadModule dav_module $mods/mod_dav.so
LoadModule dav_fs_module $mods/mod_dav_fs.so
LoadModule lua_module $mods/mod_lua.so
LoadModule auth_openidc_module $mods/mod_auth_openidc.so
TypesConfig /etc/mime.types
LogFormat "%h \"%{SSL_CLIENT_S_DN}x\" %t \"%r\" %>s %b" dav
CustomLog $STATE/access.log dav
StartServers 1
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
Timeout 120
KeepAlive On
LimitRequestBody 0
DavLockDB $STATE/run/davlock
SSLSessionCache shmcb:$STATE/run/ssl_scache(512000)
GridSiteSessionsDir $STATE/run/gridsite-sessions
DocumentRoot "$STATE/data"

SSLEngine on
SSLProtocol -all +TLSv1.2 +TLSv1.3
SSLCertificateFile $STATE/hostcert.pem
SSLCertificateKeyFile $STATE/hostkey.pem
SSLCACertificatePath $STATE/certificates
SSLCARevocationPath $STATE/certificates
SSLCARevocationCheck chain
SSLVerifyClient optional
SSLVerifyDepth 10
SSLOptions +StdEnvVars

<Directory />
    Options None
    AllowOverride None
    Require all denied
</Directory>
<Directory "$STATE/data">
    Options Indexes
    Dav On
    Require ssl-verify-client
</Directory>
Alias /digest "$STATE/data/store"
<Location /digest>
    LuaHookFixups $STATE/webdav_digest.lua addDigest
</Location>
Alias /token "$STATE/data/store"
OIDCCryptoPassphrase $(cat "$STATE/run/passphrase")
OIDCOAuthVerifyCertFiles webdav-test#$STATE/token-issuer.pem
OIDCOAuthRemoteUserClaim sub
<Location /token>
    AuthType oauth20
    <RequireAll>
        Require claim iss:$TOKEN_ISSUER
        Require claim aud:dirac
    </RequireAll>
</Location>
<Directory "$STATE/data/readonly">
    <LimitExcept GET HEAD OPTIONS PROPFIND>
        Require all denied
    </LimitExcept>
</Directory>
EOF
}

start() {
    local ca
    ca="$(wanted_ca)"
    if running; then
        if [ "$(cat "$STATE/ca-dir" 2>/dev/null)" = "$ca" ]; then
            settings
            return 0
        fi
        stop  # another CA is wanted: restart with a certificate of that one
    fi
    install_server
    mkdir -p "$STATE/run/gridsite-sessions" "$STATE/data/store" "$STATE/data/readonly"
    chmod 755 "$STATE" "$STATE/data"
    if [ -n "${DIRAC_TEST_WEBDAV_PORT:-}" ]; then
        echo "$DIRAC_TEST_WEBDAV_PORT" > "$STATE/port"
    elif [ ! -s "$STATE/port" ] || (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$STATE/port")") 2>/dev/null; then
        free_port > "$STATE/port"  # the first start, or the kept port was taken meanwhile
    fi
    make_certificates
    cp "$HERE/webdav_digest.lua" "$STATE/"  # read by the server's user, which may not reach the checkout
    write_config "$(cat "$STATE/port")"
    chown -R "$RUN_USER:" "$STATE/data" "$STATE/run"
    /usr/sbin/apache2 -t -f "$STATE/httpd.conf" >/dev/null
    rm -f "$PIDFILE"
    : > "$STATE/error.log"
    /usr/sbin/apache2 -f "$STATE/httpd.conf" -k start
    for _ in $(seq 100); do
        if running && (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$STATE/port")") 2>/dev/null; then
            settings
            return 0
        fi
        sleep 0.1
    done
    echo "httpd did not start; its log ($STATE/error.log):" >&2
    tail -20 "$STATE/error.log" >&2 || true
    return 1
}

stop() {
    if running; then
        local pid
        pid="$(cat "$PIDFILE")"
        kill -TERM "$pid"  # the parent stops its children
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if running; then settings; else echo "httpd (WebDAV) is not running" >&2; exit 3; fi ;;
    env) settings ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
