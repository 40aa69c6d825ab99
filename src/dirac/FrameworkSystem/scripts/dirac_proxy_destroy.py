"""dirac-proxy-destroy: remove the local proxy file."""

from __future__ import annotations

import sys
from pathlib import Path

from dirac.Core.Base.Script import EXIT_FAILED, EXIT_OK, Script
from dirac.Core.Security import Locations


def main(argv: list[str] | None = None) -> int:
    """Entry point of dirac-proxy-destroy."""
    script = Script("Remove the local proxy file.", jsonOutput=True, fetchRemote=False)
    script.parser.add_argument("-f", "--file", help="proxy file (default: $X509_USER_PROXY or /tmp/x509up_u<uid>)")
    args = script.parseArgs(argv)
    path = Path(args.file or Locations.getProxyLocation())
    if not path.exists():
        script.output({"path": str(path), "removed": False}, f"no proxy at {path}: nothing to remove")
        return EXIT_OK
    try:
        path.unlink()
    except OSError as exc:
        return script.fail(f"cannot remove the proxy {path}: {exc.strerror}", EXIT_FAILED)
    script.output({"path": str(path), "removed": True}, f"proxy {path} removed")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
