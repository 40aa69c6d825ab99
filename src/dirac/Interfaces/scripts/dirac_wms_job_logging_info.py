"""dirac-wms-job-logging-info: the history of status changes of jobs."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.Utilities.CommandTools import addJobArguments, jobIDsFromArguments, runCommand
from dirac.Interfaces.Utilities.WMSCommands import showLoggingInfo

EPILOG = """Example:
  $ dirac-wms-job-logging-info 1
  Status    MinorStatus         ApplicationStatus  DateTime             Source
  Received  Job accepted        Unknown            2024-05-14 10:12:40  JobManager
  Waiting   Pilot Agent Submission  Unknown        2024-05-14 10:12:45  JobScheduling
  ..."""


def main(argv: list[str] | None = None) -> int:
    script = Script("Retrieve the history of status changes of DIRAC jobs.", jsonOutput=True, epilog=EPILOG)
    addJobArguments(script.parser, fileSwitches=(), groupSwitches=())

    def body(args) -> int:  # noqa: ANN001
        dirac = Dirac()
        return showLoggingInfo(script, dirac, jobIDsFromArguments(args, dirac))

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
