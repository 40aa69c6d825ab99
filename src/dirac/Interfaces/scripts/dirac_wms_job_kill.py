"""dirac-wms-job-kill: kill jobs; running ones are stopped by their job wrapper at its next heartbeat."""

from __future__ import annotations

import sys

from dirac.Interfaces.Utilities.WMSCommands import controlCommand

main = controlCommand("kill", "Kill DIRAC jobs (running ones stop at their next heartbeat).", """Example:
  $ dirac-wms-job-kill 1918
  Killed jobs 1918

Jobs you may not kill, unknown jobs and jobs already finished are listed one per line on stderr;
the exit code is then 3 (not allowed), 4 (unknown) or 1 (status does not allow it).""")

if __name__ == "__main__":
    sys.exit(main())
