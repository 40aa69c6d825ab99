"""dirac-dms-user-lfns: every file below your home directory (or another directory) in the File Catalog."""

from __future__ import annotations

import datetime
import fnmatch
import sys

from dirac.Core.Base.Script import EXIT_OK, Script
from dirac.Interfaces.Utilities.CommandTools import CommandFailed, runCommand
from dirac.Interfaces.Utilities.DMSCommands import checked, fileCatalog, homeDirectory, reasonExitCode


def main(argv: list[str] | None = None) -> int:
    script = Script("List the files below your catalog home directory.", jsonOutput=True)
    script.parser.add_argument("-b", "--BaseDir", default="", metavar="DIR", help="start here instead of your home")
    script.parser.add_argument("-w", "--Wildcard", default="*", metavar="PATTERN", help="only file names matching it")
    script.parser.add_argument("-D", "--Days", type=int, default=0, metavar="N", help="only files older than N days")

    def body(args) -> int:  # noqa: ANN001
        base = args.BaseDir or homeDirectory()
        dump = checked(fileCatalog().getDirectoryDump(base))
        if base in dump["Failed"]:
            reason = str(dump["Failed"][base])
            raise CommandFailed(f"{base}: {reason}", reasonExitCode(reason))
        limit = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=args.Days)
        lfns = sorted(lfn for lfn, info in dump["Successful"][base]["Files"].items()
                      if fnmatch.fnmatch(lfn.rsplit("/", 1)[-1], args.Wildcard)
                      and (not args.Days or _utc(info.get("CreationDate")) <= limit))
        script.output(lfns, lambda found: "\n".join(found) if found else f"no file below {base}")
        return EXIT_OK

    return runCommand(script, body, argv)


def _utc(value: datetime.datetime | None) -> datetime.datetime:
    if value is None:
        return datetime.datetime.now(datetime.UTC)
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


if __name__ == "__main__":
    sys.exit(main())
