"""dirac-wms-job-parameters: the parameters jobs reported while running."""

from __future__ import annotations

import sys

from dirac.Interfaces.Utilities.WMSCommands import formatDict, perJobCommand

main = perJobCommand("Retrieve the parameters of DIRAC jobs (set by the job wrapper and the WMS).", """Example:
  $ dirac-wms-job-parameters 1
  {'CPUNormalizationFactor': '12.5',
   'HostName': 'wn05.example.org',
   ...}""", lambda dirac, jobID, args: dirac.getJobParameters(jobID), formatDict)

if __name__ == "__main__":
    sys.exit(main())
