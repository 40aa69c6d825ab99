"""dirac-dms-replicate-lfn: copy files to another Storage Element and register the new replicas."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.Utilities.CommandTools import runCommand
from dirac.Interfaces.Utilities.DMSCommands import dataManager, lfnsFromArguments, progressCallback, reportBulk


def main(argv: list[str] | None = None) -> int:
    script = Script("Replicate files to a Storage Element (through a local cache, checked with Adler32).",
                    jsonOutput=True, epilog="Example: dirac-dms-replicate-lfn /dirac/user/a/alice/f1 OneBox-Failover")
    script.parser.add_argument("lfn", metavar="LFN|FILE")
    script.parser.add_argument("destSE", metavar="DEST_SE")
    script.parser.add_argument("sourceSE", nargs="?", default="", metavar="SOURCE_SE")
    script.parser.add_argument("cache", nargs="?", default="", metavar="LOCAL_CACHE")

    def body(args) -> int:  # noqa: ANN001
        lfns = lfnsFromArguments([args.lfn])
        bar, advance = progressCallback(script, len(lfns), "replicating")
        with bar:
            result = dataManager().replicateAndRegister(lfns, args.destSE, args.sourceSE, localCache=args.cache,
                                                        progress=advance)
        return reportBulk(script, result,
                          lambda lfn, t: f"{lfn} {'replicated to' if t else 'already at'} {args.destSE}",
                          verb="not replicated")

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
