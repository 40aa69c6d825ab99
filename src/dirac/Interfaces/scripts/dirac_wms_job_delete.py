"""dirac-wms-job-delete: mark jobs Deleted (killing running ones); they are removed later."""

from __future__ import annotations

import sys

from dirac.Interfaces.Utilities.WMSCommands import controlCommand

main = controlCommand("delete", "Delete DIRAC jobs from the WMS; running ones are killed first.", """Example:
  $ dirac-wms-job-delete 12
  Deleted jobs 12

Failures are listed per job on stderr; exit code 3 (not allowed), 4 (unknown) or 1 (other).""")

if __name__ == "__main__":
    sys.exit(main())
