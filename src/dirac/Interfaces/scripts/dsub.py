"""dsub: build a job from a command line (or a JDL) and submit it (COMDIRAC)."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.Utilities.CommandLineJob import addSwitches, buildJDLs
from dirac.Interfaces.Utilities.CommandTools import jobList, runCommand
from dirac.Interfaces.Utilities.WMSCommands import allJobIDs, submitDescriptions

EPILOG = """The executable: an absolute path runs as it is on the worker node; a local file is
shipped in the input sandbox; a bare name (echo) is looked up on the worker node's PATH.
Prints the IDs of the new jobs, comma-separated.

Examples:
  $ dsub /bin/echo hello
  12
  $ dsub -N analysis --CPUTime 3600 --InputSandbox data.txt --OutputSandbox result.txt ./run.sh data.txt
  $ dsub -P a,b,c /bin/echo %s            # three jobs: echo a, echo b, echo c
  $ dsub -P 1:100:10 /bin/echo %s         # ten jobs: 1, 11, 21, ..., 91
  $ dsub --JDL job.jdl --Site LCG.CERN.ch"""


def main(argv: list[str] | None = None) -> int:
    script = Script("Submit a job made of a command line, or of a JDL, to the DIRAC WMS.", jsonOutput=True,
                    epilog=EPILOG)
    addSwitches(script.parser)
    script.parser.add_argument("-v", "--verbose", action="store_true", help="print the JDL(s) on stderr first")

    def body(args) -> int:  # noqa: ANN001
        jdls = buildJDLs(args)
        if args.verbose:
            print("\n".join(jdls), file=sys.stderr)
        labels = ["job"] if len(jdls) == 1 else [f"parametric job {n}" for n in range(1, len(jdls) + 1)]
        submitted, failed, code = submitDescriptions(script, Dirac(), list(zip(labels, jdls, strict=True)))
        jobIDs = allJobIDs(submitted)
        if jobIDs or script.wantsJSON:
            script.output({"JobIDs": jobIDs, "Failed": failed}, lambda _: jobList(jobIDs))
        return code

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
