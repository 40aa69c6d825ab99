"""dirac-wms-job-status: the status of jobs, optionally waiting until they finish."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.Utilities.CommandTools import addJobArguments, jobIDsFromArguments, runCommand
from dirac.Interfaces.Utilities.WMSCommands import showStatus, waitForJobs

EPILOG = """Example:
  $ dirac-wms-job-status 2
  JobID=2 Status=Done; MinorStatus=Execution Complete; ApplicationStatus=Unknown; Site=DIRAC.Test.local;"""


def main(argv: list[str] | None = None) -> int:
    script = Script("Retrieve the status of DIRAC jobs.", jsonOutput=True, epilog=EPILOG)
    addJobArguments(script.parser)
    script.parser.add_argument("-w", "--wait", action="store_true",
                               help="wait until every job is in a final status (Done, Failed, Killed, ...)")
    script.parser.add_argument("--timeout", type=float, default=0, metavar="SECONDS",
                               help="with --wait: give up after SECONDS (exit code 1); default: wait for ever")
    script.parser.add_argument("--interval", type=float, default=10, metavar="SECONDS",
                               help="with --wait: seconds between two checks (default 10)")

    def body(args) -> int:  # noqa: ANN001
        dirac = Dirac()
        jobIDs = jobIDsFromArguments(args, dirac)
        if not args.wait:
            return showStatus(script, dirac, jobIDs)
        statuses, code = waitForJobs(script, dirac, jobIDs, args.timeout, args.interval)
        if statuses is None:
            return code
        return showStatus(script, dirac, jobIDs, statuses) or code

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
