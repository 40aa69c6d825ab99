"""dirac-jobagent: run the JobAgent in a pilot until its slot is used up (the pilot starts it).

Exit code 0 when the agent ran (with or without jobs), 1 when it could not run or never reached the Matcher.
"""

from __future__ import annotations

import sys

from dirac.Core.Base.AgentModule import runAgents
from dirac.Core.Base.Script import EXIT_FAILED, EXIT_OK, Script
from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.Core.Utilities.Logging import setupLogging


def main(argv: list[str] | None = None) -> int:
    script = Script("Ask the Matcher for jobs that fit this slot and run them, until the slot is used up.",
                    epilog="The slot is described by the /LocalSite section the pilot writes.")
    args = script.parseArgs(argv)
    setupLogging("DEBUG" if args.debug else gConfig.getValue("/DIRAC/LogLevel", "INFO"))
    from dirac.WorkloadManagementSystem.Agent.JobAgent import JobAgent

    agent = JobAgent()
    try:
        runAgents([agent], stopTimeout=gConfig.getValue(f"{agent.section}/StopTimeout", 600.0))
    except DiracError as exc:
        return script.fail(exc.message)
    if not agent.cycles or agent.failedCycles == agent.cycles:
        return EXIT_FAILED
    if agent.matchErrors and not agent.jobsRun:  # never got an answer from the Matcher: the pilot failed
        return script.fail(f"the Matcher could not be asked for jobs ({agent.matchErrors} errors, see the log)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
