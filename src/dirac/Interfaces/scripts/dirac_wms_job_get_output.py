"""dirac-wms-job-get-output: download the output sandboxes of jobs."""

from __future__ import annotations

import os
import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.Utilities.CommandTools import addJobArguments, jobIDsFromArguments, runCommand
from dirac.Interfaces.Utilities.WMSCommands import retrieveOutputs

EPILOG = """Example:
  $ dirac-wms-job-get-output 1
  Job output sandbox retrieved in 1/
    1/std.out
    1/std.err

With -g, the Done and Failed jobs of the group land in <Dir>/<JobGroup>/<JobID>/."""


def main(argv: list[str] | None = None) -> int:
    script = Script("Retrieve the output sandbox of DIRAC jobs into <Dir>/<JobID>/.", jsonOutput=True,
                    epilog=EPILOG)
    addJobArguments(script.parser)
    script.parser.add_argument("-D", "--Dir", dest="outputDir", metavar="DIR",
                               help="store the output in this directory (default: the current one)")

    def body(args) -> int:  # noqa: ANN001
        dirac = Dirac()
        jobIDs = jobIDsFromArguments(args, dirac, groupStatuses=("Done", "Failed"))
        outputDir = os.path.join(args.outputDir or "", args.jobGroup) if args.jobGroup else args.outputDir
        return retrieveOutputs(script, dirac, jobIDs, outputDir)

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
