"""dirac-dms-find-lfns: files whose metadata match a query."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import EXIT_OK, Script
from dirac.Interfaces.Utilities.CommandTools import UsageError, runCommand
from dirac.Interfaces.Utilities.DMSCommands import checked, fileCatalog

EPILOG = """Conditions are Field<op>value with op one of = != < > <= >=; 'Field=a,b' is 'one of'.
Path=/dir says where to look (default: your VO).

Example:
  $ dirac-dms-find-lfns Path=/dirac/data Run>=5 Particle=muon"""


def main(argv: list[str] | None = None) -> int:
    script = Script("Find files by metadata.", jsonOutput=True, epilog=EPILOG)
    script.parser.add_argument("conditions", nargs="+", metavar="Field<op>value")

    def body(args) -> int:  # noqa: ANN001
        from dirac.DataManagementSystem.Logic.MetaQuery import mergeConditions

        path = "/"
        conditions = []
        for text in args.conditions:
            if text.startswith("Path="):
                path = text.removeprefix("Path=")
            else:
                conditions.append(text)
        if not conditions:
            raise UsageError("no metadata condition given")
        try:
            query = mergeConditions(conditions)
        except Exception as exc:  # InvalidArgument from the parser
            raise UsageError(str(exc)) from None
        lfns = sorted(checked(fileCatalog().findFilesByMetadata(query, path)))
        script.output(lfns, lambda found: "\n".join(found) if found else "no file matches")
        return EXIT_OK

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
