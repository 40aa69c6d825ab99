"""dirac-wms-job-reschedule: send jobs back to the WMS for a new attempt."""

from __future__ import annotations

import sys

from dirac.Interfaces.Utilities.WMSCommands import controlCommand

main = controlCommand("reschedule", "Reschedule DIRAC jobs: each goes back to Received for a new attempt.",
                      """Example:
  $ dirac-wms-job-reschedule 1
  Rescheduled jobs 1

Past the maximum number of reschedulings a job is set to Failed instead.
Failures are listed per job on stderr; exit code 3 (not allowed), 4 (unknown) or 1 (other).""")

if __name__ == "__main__":
    sys.exit(main())
