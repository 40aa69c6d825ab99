#!/usr/bin/env bash
# README command (1): install, create a one-box grid in ./instance, start it and prove it works.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
INSTANCE="${DIRAC_INSTANCE:-$ROOT/instance}"

if [ ! -f "$INSTANCE/etc/dirac.cfg" ]; then
    echo ">>> creating the instance in $INSTANCE"
    dirac-server init --dir "$INSTANCE"
fi
if ! dirac-server status --dir "$INSTANCE" >/dev/null 2>&1; then
    echo ">>> starting all services and agents"
    dirac-server start --detach --dir "$INSTANCE"
fi
source "$INSTANCE/bashrc"

echo ">>> your proxy"
dirac-proxy-info
echo ">>> an authenticated RPC call over HTTPS"
dirac-ping-service Configuration/Server --whoami
echo ">>> a hello-world job through the public API, run by a real pilot of the one-box site"
python "$ROOT/examples/hello_world.py"
echo
echo "The grid runs in $INSTANCE (log: $INSTANCE/log/server.log)."
echo "Use it from a shell with:  source $INSTANCE/bashrc && export PATH=$ROOT/.venv/bin:\$PATH"
echo "Stop it with:              $ROOT/.venv/bin/dirac-server stop --dir $INSTANCE"
