"""doutput: download the output sandboxes of jobs (COMDIRAC)."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.Utilities.CommandTools import addJobArguments, jobIDsFromArguments, runCommand
from dirac.Interfaces.Utilities.WMSCommands import retrieveOutputs

EPILOG = """Examples:
  $ doutput 12,13            # into ./12/ and ./13/
  $ doutput -D results 12    # into results/12/
  $ doutput -g mygroup       # the Done and Failed jobs of a job group"""


def main(argv: list[str] | None = None) -> int:
    script = Script("Retrieve the output sandbox of DIRAC jobs.", jsonOutput=True, epilog=EPILOG)
    addJobArguments(script.parser, fileSwitches=("-i", "--input-file"))
    script.parser.add_argument("-D", "--OutputDir", dest="outputDir", metavar="DIR", help="destination directory")
    script.parser.add_argument("-n", "--NoJobDir", action="store_true",
                               help="put the files in DIR itself, not in DIR/<JobID>/")

    def body(args) -> int:  # noqa: ANN001
        dirac = Dirac()
        jobIDs = jobIDsFromArguments(args, dirac, groupStatuses=("Done", "Failed"))
        return retrieveOutputs(script, dirac, jobIDs, args.outputDir, noJobDir=args.NoJobDir)

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
