"""dirac-dms-get-file: download files by LFN, checked against the catalog's Adler32."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.Utilities.CommandTools import runCommand
from dirac.Interfaces.Utilities.DMSCommands import dataManager, lfnsFromArguments, progressCallback, reportBulk


def main(argv: list[str] | None = None) -> int:
    script = Script("Download files from the Storage Elements holding them.", jsonOutput=True,
                    epilog="LFNs as arguments, or files listing one LFN per line.")
    script.parser.add_argument("lfns", nargs="+", metavar="LFN|FILE")
    script.parser.add_argument("-D", "--Dir", default="", metavar="DIR", help="where to put the files (default: here)")
    script.parser.add_argument("--SE", default=None, metavar="SE", help="download only from this Storage Element")

    def body(args) -> int:  # noqa: ANN001
        lfns = lfnsFromArguments(args.lfns)
        bar, advance = progressCallback(script, len(lfns), "downloading")
        with bar:
            result = dataManager().getFile(lfns, args.Dir, sourceSE=args.SE, progress=advance)
        return reportBulk(script, result, lambda lfn, path: f"{lfn} -> {path}", verb="not downloaded")

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
