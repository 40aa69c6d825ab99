"""dlogging: the history of status changes of jobs (COMDIRAC)."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.Utilities.CommandTools import TABLE_FORMATS, addJobArguments, jobIDsFromArguments, runCommand
from dirac.Interfaces.Utilities.WMSCommands import showLoggingInfo

EPILOG = """Example:
  $ dlogging 12
  Status    MinorStatus   ApplicationStatus  DateTime             Source
  Received  Job accepted  Unknown            2024-05-14 10:12:40  JobManager
  ..."""


def main(argv: list[str] | None = None) -> int:
    script = Script("Show the status history of DIRAC jobs.", jsonOutput=True, epilog=EPILOG)
    addJobArguments(script.parser, fileSwitches=(), groupSwitches=())
    script.parser.add_argument("-f", "--Fmt", choices=TABLE_FORMATS, default="pretty", help="display format")

    def body(args) -> int:  # noqa: ANN001
        dirac = Dirac()
        return showLoggingInfo(script, dirac, jobIDsFromArguments(args, dirac), args.Fmt)

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
