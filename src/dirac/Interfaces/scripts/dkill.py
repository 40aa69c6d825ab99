"""dkill: kill (or with -D delete) jobs (COMDIRAC)."""

from __future__ import annotations

import sys

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Base.Script import Script, exitCodeFor
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.Utilities.CommandTools import CommandFailed, UsageError, parseJobIDs, runCommand
from dirac.Interfaces.Utilities.JobSelection import ACTIVE_STATES, ALL_STATES, callerJobs
from dirac.Interfaces.Utilities.WMSCommands import controlJobs

EPILOG = """Examples:
  $ dkill 12,13 14
  Killed jobs 12,13,14
  $ dkill -a          # every job of mine not finished yet
  $ dkill -D 12       # delete instead of kill"""


def main(argv: list[str] | None = None) -> int:
    script = Script("Kill or delete DIRAC jobs.", jsonOutput=True, epilog=EPILOG)
    script.parser.add_argument("jobIDs", nargs="*", metavar="JobID", help="DIRAC job IDs (also '12,13')")
    script.parser.add_argument("-D", "--delete", action="store_true", help="delete the jobs instead of killing them")
    script.parser.add_argument("-a", "--all", dest="selectAll", action="store_true",
                               help="all my jobs: not finished ones (kill), not deleted ones (with -D)")

    def body(args) -> int:  # noqa: ANN001
        jobIDs = parseJobIDs(args.jobIDs)
        if args.selectAll:
            statuses = [s for s in ALL_STATES if s != JobStatus.DELETED] if args.delete else ACTIVE_STATES
            mine = callerJobs(statuses)
            if not mine["OK"]:
                raise CommandFailed(mine["Message"], exitCodeFor(mine))
            jobIDs += [jobID for jobID in mine["Value"] if jobID not in jobIDs]
            if not jobIDs:
                script.output({"OK": True, "Successful": []}, "No jobs selected")
                return 0
        if not jobIDs:
            raise UsageError("no job given: name job IDs or use -a for all yours")
        return controlJobs(script, Dirac(), "delete" if args.delete else "kill", jobIDs)

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
