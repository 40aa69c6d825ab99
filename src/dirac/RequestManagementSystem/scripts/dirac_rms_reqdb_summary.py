"""dirac-rms-reqdb-summary: how many requests, operations and files are in each status (DIRAC's command)."""

from __future__ import annotations

import sys
from typing import Any

from dirac.Core.Base.Script import EXIT_OK, Script, exitCodeFor
from dirac.RequestManagementSystem.Client.ReqClient import ReqClient


def formatSummary(summary: dict[str, Any]) -> str:
    """Requests, then operations by type, then files, each with its counts by status."""
    lines = ["Requests:"] + [f"  {status:12} {count}" for status, count in sorted(summary["Request"].items())]
    lines.append("Operations:")
    for opType, counts in sorted(summary["Operation"].items()):
        lines.append(f"  {opType}")
        lines += [f"    {status:10} {count}" for status, count in sorted(counts.items())]
    lines.append("Files:")
    lines += [f"  {status:12} {count}" for status, count in sorted(summary["File"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    script = Script("Count the requests, operations and files of the ReqDB by status (users: their own; operators: "
                    "all).", jsonOutput=True)
    script.parseArgs(argv)
    result = ReqClient().getDBSummary()
    if not result["OK"]:
        return script.fail(result["Message"], exitCodeFor(result))
    script.output(result["Value"], formatSummary)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
