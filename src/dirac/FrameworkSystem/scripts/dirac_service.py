"""dirac-service: run one or more services in their own process (multi-process, multi-host)."""

from __future__ import annotations

import sys

from dirac.Core.Base import Components
from dirac.Core.Base.Runner import runComponents
from dirac.Core.Base.Script import Script
from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.Core.Utilities.Logging import setupLogging


def main(argv: list[str] | None = None) -> int:
    script = Script("Run services (System/Name ...) on one HTTPS port until SIGTERM.",
                    epilog="Installed services: " + ", ".join(Components.listServices()))
    script.parser.add_argument("services", nargs="+", metavar="System/Service")
    script.parser.add_argument("--port", type=int, help="HTTPS port (default /DIRAC/Server/Port or 8443)")
    # The Configuration Server is the source of the configuration: it must not fetch it from itself.
    script.fetchRemote = "Configuration/Server" not in (argv if argv is not None else sys.argv[1:])
    args = script.parseArgs(argv)
    setupLogging("DEBUG" if args.debug else gConfig.getValue("/DIRAC/LogLevel", "INFO"))
    try:
        return runComponents(args.services, [], port=args.port)
    except DiracError as exc:
        return script.fail(exc.message)


if __name__ == "__main__":
    sys.exit(main())
