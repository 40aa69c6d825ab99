#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the web portal's browser tests (tests/integration/test_WebApp_Browser.py).
#
#   chromium.sh install   install the packages chromium and chromium-driver with apt-get when missing
#   chromium.sh paths     print the paths of chromium and chromedriver (exit 1 when missing)
#
# A test tool's own browser download does not work here: the tests drive this Chromium with
# selenium through this chromedriver, headless, with a fresh profile per test module.
set -euo pipefail

paths() {
    local browser driver
    browser="$(command -v chromium || true)"
    driver="$(command -v chromedriver || true)"
    [[ -n "$browser" && -n "$driver" ]] || { echo "chromium or chromedriver is not installed" >&2; return 1; }
    echo "$browser"
    echo "$driver"
}

case "${1:-}" in
install)
    if ! paths >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
    paths
    ;;
paths)
    paths
    ;;
*)
    echo "usage: $0 install|paths" >&2; exit 2
    ;;
esac
