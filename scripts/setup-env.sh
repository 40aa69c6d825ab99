#!/usr/bin/env bash
# Shared by one-box.sh and run-tests.sh: system packages, the .venv and the project in it.
# Usage: source scripts/setup-env.sh [pip extras, e.g. "test"]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

# M2Crypto builds from source where no wheel fits: it needs swig and the OpenSSL headers.
missing=()
command -v swig >/dev/null || missing+=(swig)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
command -v openssl >/dev/null || missing+=(openssl)
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo ">>> installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$ROOT/.venv/bin/python" ]; then
    echo ">>> creating $ROOT/.venv"
    python3 -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/pip" install -q --upgrade pip
fi
echo ">>> installing dirac-seed${EXTRAS:+ [$EXTRAS]} into .venv"
"$ROOT/.venv/bin/pip" install -q --disable-pip-version-check -e "$ROOT${EXTRAS:+[$EXTRAS]}" 2>&1 \
    | grep -v "^WARNING: Location" || true
export PATH="$ROOT/.venv/bin:$PATH"
