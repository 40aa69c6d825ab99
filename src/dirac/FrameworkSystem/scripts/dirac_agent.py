"""dirac-agent: run one or more agents in their own process."""

from __future__ import annotations

import sys

from dirac.Core.Base import Components
from dirac.Core.Base.Runner import runComponents
from dirac.Core.Base.Script import EXIT_FAILED, EXIT_OK, Script
from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.Core.Utilities.Logging import setupLogging


def main(argv: list[str] | None = None) -> int:
    script = Script("Run agents (System/Name ...) until SIGTERM, or one cycle with --once.",
                    epilog="Installed agents: " + (", ".join(Components.listAgents()) or "none"))
    script.parser.add_argument("agents", nargs="+", metavar="System/Agent")
    script.parser.add_argument("--once", action="store_true", help="run a single cycle of each agent and exit")
    args = script.parseArgs(argv)
    setupLogging("DEBUG" if args.debug else gConfig.getValue("/DIRAC/LogLevel", "INFO"))
    try:
        if args.once:
            failed = 0
            for name in args.agents:
                agent = Components.loadAgent(name)(name)
                agent.run(once=True)
                failed += agent.failedCycles
            return EXIT_OK if not failed else EXIT_FAILED
        return runComponents([], args.agents)
    except DiracError as exc:
        return script.fail(exc.message)


if __name__ == "__main__":
    sys.exit(main())
