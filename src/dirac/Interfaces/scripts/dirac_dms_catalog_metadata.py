"""dirac-dms-catalog-metadata: the catalog metadata of files (size, checksum, GUID, status)."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import Script
from dirac.Interfaces.Utilities.CommandTools import formatTable, plain, runCommand
from dirac.Interfaces.Utilities.DMSCommands import checked, fileCatalog, lfnsFromArguments, reportBulk

COLUMNS = ["FileName", "Size", "GUID", "Status", "Checksum"]


def main(argv: list[str] | None = None) -> int:
    script = Script("Show the File Catalog metadata of files.", jsonOutput=True,
                    epilog="LFNs as arguments, or files listing one LFN per line.")
    script.parser.add_argument("lfns", nargs="+", metavar="LFN|FILE")

    def body(args) -> int:  # noqa: ANN001
        result = fileCatalog().getFileMetadata(lfnsFromArguments(args.lfns))
        value = checked(result)
        if not script.wantsJSON and value["Successful"]:
            rows = [{"FileName": lfn, **meta} for lfn, meta in sorted(value["Successful"].items())]
            print(formatTable(COLUMNS, plain(rows)))
        return reportBulk(script, result, lambda _lfn, _meta: None, verb="has no metadata")

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
