"""Functions the fork server tests run in forked children (imported by the server by module name)."""

from __future__ import annotations

import json
import os
import sys
import time


def describe(argv: list[str]) -> int:
    """Print what the child sees (argv, cwd, environment, session, descriptors, input) and return argv[0]."""
    print(json.dumps({"argv": argv, "sysArgv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ),
                      "pid": os.getpid(), "sid": os.getsid(0), "pgid": os.getpgid(0),
                      "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")), "stdin": sys.stdin.read()}))
    print("to stderr", file=sys.stderr)
    return int(argv[0]) if argv else 0


def exitWith(argv: list[str]) -> None:
    sys.exit(int(argv[0]))


def fail(argv: list[str]) -> None:
    raise RuntimeError(f"failed on purpose: {argv}")


def sleep(argv: list[str]) -> None:
    time.sleep(float(argv[0]))
