"""dirac-configuration-dump: print the configuration this client sees (or one section of it)."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import EXIT_NOT_FOUND, EXIT_OK, Script
from dirac.Core.Config import gConfig


def main(argv: list[str] | None = None) -> int:
    script = Script("Print the merged configuration (central CS plus local files).", jsonOutput=True)
    script.parser.add_argument("section", nargs="?", default="/", help="section to print (default: all)")
    script.parser.add_argument("--history", type=int, metavar="N", help="show the last N commits instead")
    args = script.parseArgs(argv)
    if args.history:
        from dirac.ConfigurationSystem.Client.CSAPI import CSAPI

        result = CSAPI().getCommitHistory(args.history)
        if not result["OK"]:
            return script.fail(result["Message"])
        script.output(result["Value"], lambda rows: "\n".join(f"{v}  {who}" for v, who in rows))
        return EXIT_OK
    tree = gConfig.getSectionTree(args.section) if args.section != "/" else gConfig.cfg
    if tree is None:
        return script.fail(f"no section {args.section}", EXIT_NOT_FOUND)
    script.output(tree.getAsDict(), str(tree))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
