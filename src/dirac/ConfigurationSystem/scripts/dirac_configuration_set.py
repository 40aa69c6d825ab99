"""dirac-configuration-set: change options of the central configuration and commit them."""

from __future__ import annotations

import sys

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.Core.Base.Script import EXIT_OK, Script, exitCodeFor


def main(argv: list[str] | None = None) -> int:
    script = Script("Set or delete options in the central configuration (needs CSAdministrator).",
                    jsonOutput=True, epilog="Example: dirac-configuration-set /Registry/Users/bob/Email=bob@example.org")
    script.parser.add_argument("assignments", nargs="*", metavar="/Path=value", help="options to set")
    script.parser.add_argument("--delete", action="append", default=[], metavar="/Path",
                               help="option or section to delete (repeatable)")
    args = script.parseArgs(argv)
    if not args.assignments and not args.delete:
        return script.fail("nothing to do: give /Path=value assignments or --delete /Path", 2)
    api = CSAPI()
    result = api.initialize()
    if not result["OK"]:
        return script.fail(result["Message"], exitCodeFor(result))
    for assignment in args.assignments:
        path, sep, value = assignment.partition("=")
        if not sep or not path.startswith("/"):
            return script.fail(f"expected /Path=value, got {assignment!r}", 2)
        api.setOption(path, value)
    for path in args.delete:
        if not api.delete(path):
            return script.fail(f"{path} is not in the configuration", 4)
    changes = list(api.changes)
    result = api.commit()
    if not result["OK"]:
        return script.fail(result["Message"], exitCodeFor(result))
    script.output({"version": result["Value"], "changes": changes},
                  lambda d: "\n".join(d["changes"] + [f"Committed as version {d['version']}"]))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
