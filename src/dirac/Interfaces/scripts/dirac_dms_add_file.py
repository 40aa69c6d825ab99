"""dirac-dms-add-file: upload local files to a Storage Element and register them in the File Catalog."""

from __future__ import annotations

import sys
from pathlib import Path

from dirac.Core.Base.Script import Script
from dirac.Interfaces.Utilities.CommandTools import UsageError, runCommand
from dirac.Interfaces.Utilities.DMSCommands import reportBulk, uploadAndRegister

EPILOG = """Either LFN LOCALFILE SE [GUID], or a file whose lines are 'LFN LOCALFILE SE [GUID]'.

Examples:
  $ dirac-dms-add-file /dirac/user/a/alice/data/run1.dat run1.dat OneBox-SE
  $ dirac-dms-add-file uploads.txt"""


def main(argv: list[str] | None = None) -> int:
    script = Script("Upload files to a Storage Element and register them in the File Catalog.", jsonOutput=True,
                    epilog=EPILOG)
    script.parser.add_argument("arguments", nargs="+", metavar="LFN LOCALFILE SE [GUID] | FILE")
    script.parser.add_argument("--overwrite", action="store_true", help="replace files already registered")

    def body(args) -> int:  # noqa: ANN001
        if len(args.arguments) == 1:
            source = Path(args.arguments[0])
            if not source.is_file():
                raise UsageError(f"{source}: no such file of 'LFN LOCALFILE SE [GUID]' lines")
            rows = [line.split() for line in source.read_text().splitlines() if line.strip()]
        else:
            rows = [args.arguments]
        if any(len(row) not in (3, 4) for row in rows):
            raise UsageError("each upload needs LFN LOCALFILE SE [GUID]")
        uploads = [(lfn, local, se, guid[0] if guid else None) for lfn, local, se, *guid in rows]
        return reportBulk(script, uploadAndRegister(script, uploads, args.overwrite),
                          lambda lfn, _v: f"Successfully uploaded {lfn}", verb="not uploaded")

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
