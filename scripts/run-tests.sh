#!/usr/bin/env bash
# README command (2): install the test dependencies and run the tests.
# Extra arguments go to pytest, e.g.  bash scripts/run-tests.sh -m "not dirac_client"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh" test
cd "$ROOT"
echo ">>> ruff"
ruff check src tests
echo ">>> pytest"
exec pytest "$@"
