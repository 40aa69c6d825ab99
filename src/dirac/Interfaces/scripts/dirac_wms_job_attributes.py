"""dirac-wms-job-attributes: the attributes of jobs (status, owner, site, times, ...)."""

from __future__ import annotations

import sys

from dirac.Interfaces.Utilities.WMSCommands import formatDict, perJobCommand

main = perJobCommand("Retrieve the attributes of DIRAC jobs.", """Example:
  $ dirac-wms-job-attributes 1
  {'ApplicationStatus': 'Unknown',
   'JobGroup': 'NoGroup',
   'JobName': 'hello',
   ...}""", lambda dirac, jobID, args: dirac.getJobAttributes(jobID), formatDict)

if __name__ == "__main__":
    sys.exit(main())
