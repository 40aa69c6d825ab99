"""dirac-wms-job-submit: submit jobs described in JDL files."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.Utilities.CommandTools import runCommand
from dirac.Interfaces.Utilities.WMSCommands import allJobIDs, submitDescriptions

EPILOG = """Example:
  $ dirac-wms-job-submit Simple.jdl
  JobID = 11

A parametric JDL prints the list of its jobs: JobID = [12, 13, 14]."""


def main(argv: list[str] | None = None) -> int:
    script = Script("Submit jobs to the DIRAC WMS, one per JDL file.", jsonOutput=True, epilog=EPILOG)
    script.parser.add_argument("jdlFiles", nargs="+", metavar="JDL", help="path to a JDL file")
    script.parser.add_argument("-f", "--File", dest="idFile", metavar="FILE",
                               help="also append the new job IDs to FILE, one per line")

    def body(args) -> int:  # noqa: ANN001
        submitted, failed, code = submitDescriptions(script, Dirac(), [(path, path) for path in args.jdlFiles])
        script.output({"Submitted": submitted, "Failed": failed},
                      lambda data: "\n".join(f"JobID = {value}" for value in data["Submitted"].values()))
        if args.idFile and submitted:
            with open(args.idFile, "a") as ids:
                ids.writelines(f"{jobID}\n" for jobID in allJobIDs(submitted))
        return code

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
