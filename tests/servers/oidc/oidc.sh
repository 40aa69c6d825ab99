#!/usr/bin/env bash
# A real OpenID Connect provider (npm "oidc-provider") on 127.0.0.1 for the token tests.
#
#   oidc.sh start STATE_DIR   install the npm packages into the cache if needed, create the
#                             TLS CA and certificate, client secrets and signing key in
#                             STATE_DIR (once), start the server on a free port; prints the issuer
#   oidc.sh stop STATE_DIR    stop it
#   oidc.sh status STATE_DIR  exit 0 when it runs
#
# STATE_DIR then holds: issuer (the URL), ca.pem (the CA of its TLS certificate),
# clients.json (secrets of dirac-server, dirac-pilot and dirac-web), signing-key.jwk.json (the token
# signing key, for tests that forge tokens; signing-key-rs256.jwk.json the RSA one), server.log, pid.
# Environment: DIRAC_TEST_CACHE (default ~/.cache/dirac-seed-tests) holds node_modules;
# OIDC_ACCESS_TOKEN_TTL (seconds, default 300); OIDC_ACCESS_TOKEN_ALG (ES256, the default, or RS256:
# the algorithm of the access tokens; both keys are always in the provider's JWKS).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ACTION="${1:-}"
STATE="${2:-}"
[[ -n "$ACTION" && -n "$STATE" ]] || { echo "usage: $0 start|stop|status STATE_DIR" >&2; exit 2; }
CACHE="${DIRAC_TEST_CACHE:-$HOME/.cache/dirac-seed-tests}/oidc-provider"

running() { [[ -f "$STATE/pid" ]] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; }

install() {
    mkdir -p "$CACHE"
    if ! cmp -s "$HERE/package-lock.json" "$CACHE/package-lock.json" || [[ ! -d "$CACHE/node_modules/oidc-provider" ]]; then
        cp "$HERE/package.json" "$HERE/package-lock.json" "$CACHE/"
        (cd "$CACHE" && npm ci --no-audit --no-fund --loglevel=error >"$CACHE/npm.log" 2>&1) \
            || { echo "npm ci failed, see $CACHE/npm.log" >&2; tail -20 "$CACHE/npm.log" >&2; exit 1; }
    fi
    cp "$HERE/server.mjs" "$CACHE/server.mjs"
}

makeState() {
    mkdir -p "$STATE"
    chmod 700 "$STATE"
    [[ -f "$STATE/server-cert.pem" ]] || {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=Test OIDC CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout "$STATE/ca-key.pem" -out "$STATE/ca.pem" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
            -keyout "$STATE/server-key.pem" -out "$STATE/server.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n' >"$STATE/server.ext"
        openssl x509 -req -in "$STATE/server.csr" -CA "$STATE/ca.pem" -CAkey "$STATE/ca-key.pem" -CAcreateserial \
            -days 2 -extfile "$STATE/server.ext" -out "$STATE/server-cert.pem" 2>/dev/null
        rm -f "$STATE/server.csr" "$STATE/server.ext"
    }
    [[ -f "$STATE/clients.json" ]] || (umask 077; node -e '
        const r = () => require("crypto").randomBytes(24).toString("base64url");
        console.log(JSON.stringify({"dirac-server": r(), "dirac-pilot": r(), "dirac-web": r(), cookies: r()}));' >"$STATE/clients.json")
    [[ -f "$STATE/signing-key.jwk.json" ]] || (umask 077; node -e '
        const c = require("crypto");
        const { privateKey } = c.generateKeyPairSync("ec", { namedCurve: "P-256" });
        const jwk = privateKey.export({ format: "jwk" });
        jwk.kid = c.randomBytes(8).toString("hex"); jwk.alg = "ES256"; jwk.use = "sig";
        console.log(JSON.stringify(jwk));' >"$STATE/signing-key.jwk.json")
    [[ -f "$STATE/signing-key-rs256.jwk.json" ]] || (umask 077; node -e '
        const c = require("crypto");
        const { privateKey } = c.generateKeyPairSync("rsa", { modulusLength: 2048 });
        const jwk = privateKey.export({ format: "jwk" });
        jwk.kid = c.randomBytes(8).toString("hex"); jwk.alg = "RS256"; jwk.use = "sig";
        console.log(JSON.stringify(jwk));' >"$STATE/signing-key-rs256.jwk.json")
}

case "$ACTION" in
start)
    if running; then cat "$STATE/issuer"; echo; exit 0; fi
    command -v node >/dev/null || { echo "node is not installed" >&2; exit 1; }
    install
    makeState
    rm -f "$STATE/issuer"
    OIDC_STATE_DIR="$STATE" nohup node "$CACHE/server.mjs" >"$STATE/server.log" 2>&1 &
    echo $! >"$STATE/pid"
    for _ in $(seq 1 150); do
        if [[ -s "$STATE/issuer" ]]; then cat "$STATE/issuer"; echo; exit 0; fi
        running || { echo "the OIDC provider exited:" >&2; tail -20 "$STATE/server.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "the OIDC provider did not start in 15 s" >&2; tail -20 "$STATE/server.log" >&2; exit 1
    ;;
stop)
    if running; then
        pid="$(cat "$STATE/pid")"
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$STATE/pid" "$STATE/issuer"
    ;;
status)
    running
    ;;
*)
    echo "usage: $0 start|stop|status STATE_DIR" >&2; exit 2
    ;;
esac
