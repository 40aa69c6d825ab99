"""dirac-wms-job-get-jdl: the JDL of jobs, as processed by the WMS or as submitted."""

from __future__ import annotations

import argparse
import sys

from dirac.Interfaces.Utilities.WMSCommands import perJobCommand


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-O", "--Original", "--original", dest="original", action="store_true",
                        help="the JDL as it was submitted, before the WMS completed it")


main = perJobCommand("Retrieve the current JDL of DIRAC jobs.", """Example:
  $ dirac-wms-job-get-jdl 1
  [
      Arguments = "hello";
      Executable = "/bin/echo";
      ...
  ]""", lambda dirac, jobID, args: dirac.getJobJDL(jobID, original=args.original), str, _options)

if __name__ == "__main__":
    sys.exit(main())
