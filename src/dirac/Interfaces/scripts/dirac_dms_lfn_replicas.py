"""dirac-dms-lfn-replicas: the replicas of files, by Storage Element."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.Utilities.CommandTools import runCommand
from dirac.Interfaces.Utilities.DMSCommands import dataManager, lfnsFromArguments, reportBulk


def main(argv: list[str] | None = None) -> int:
    script = Script("Show the replicas of files.", jsonOutput=True,
                    epilog="LFNs as arguments, or files listing one LFN per line.")
    script.parser.add_argument("lfns", nargs="+", metavar="LFN|FILE")
    script.parser.add_argument("-a", "--All", action="store_true", help="also replicas in statuses normally hidden")
    script.parser.add_argument("--Active", action="store_true", help="only replicas on SEs that may be read now")

    def describe(lfn: str, replicas: dict[str, str]) -> str:
        return "\n".join([lfn] + [f"    {se:<20} {pfn}" for se, pfn in sorted(replicas.items())])

    def body(args) -> int:  # noqa: ANN001
        result = dataManager().getReplicas(lfnsFromArguments(args.lfns), allStatus=args.All, active=args.Active)
        return reportBulk(script, result, describe, verb="has no replicas")

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
