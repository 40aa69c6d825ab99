"""dirac-dms-remove-files: remove files, every replica and the catalog entry."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.Utilities.CommandTools import runCommand
from dirac.Interfaces.Utilities.DMSCommands import dataManager, lfnsFromArguments, progressCallback, reportBulk


def main(argv: list[str] | None = None) -> int:
    script = Script("Remove files: their replicas on every Storage Element, then their catalog entries.",
                    jsonOutput=True, epilog="LFNs as arguments, or files listing one LFN per line.")
    script.parser.add_argument("lfns", nargs="+", metavar="LFN|FILE")

    def body(args) -> int:  # noqa: ANN001
        lfns = lfnsFromArguments(args.lfns)
        bar, advance = progressCallback(script, len(lfns), "removing")
        with bar:
            result = dataManager().removeFile(lfns, progress=advance)
        return reportBulk(script, result, lambda lfn, _v: f"Removed {lfn}", verb="not removed")

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
