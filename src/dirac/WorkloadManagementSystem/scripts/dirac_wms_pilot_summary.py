"""dirac-wms-pilot-summary: how many pilots each site and CE has, by status."""

from __future__ import annotations

import sys
from typing import Any

from dirac.Core.Base.Script import EXIT_OK, Script
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotManagerClient, pilotExitCode

#: DIRAC's pilot statuses, in the order of a pilot's life (as Resources.Computing.ComputingElement.PILOT_STATES)
STATUSES = ("Submitted", "Waiting", "Running", "Done", "Failed", "Aborted", "Deleted", "Unknown")


def summaryRows(counters: list) -> list[dict[str, Any]]:
    """[{Site, CE, <Status>: count, ..., Total}] from getCounters' [({GridSite, DestinationSite, Status}, n)]."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for attrs, count in counters:
        row = rows.setdefault((attrs["GridSite"], attrs["DestinationSite"]),
                              {"Site": attrs["GridSite"], "CE": attrs["DestinationSite"], "Total": 0})
        row[attrs["Status"]] = row.get(attrs["Status"], 0) + count
        row["Total"] += count
    return [rows[key] for key in sorted(rows)]


def formatSummary(rows: list[dict[str, Any]]) -> str:
    """A table: one line per site and CE, one column per status seen, totals last."""
    if not rows:
        return "No pilots found"
    seen = {key for row in rows for key in row}
    statuses = [s for s in STATUSES if s in seen] + sorted(seen - set(STATUSES) - {"Site", "CE", "Total"})
    total = {"Site": "Total", "CE": "", "Total": sum(row["Total"] for row in rows)}
    total.update({s: sum(row.get(s, 0) for row in rows) for s in statuses})
    header = ["Site", "CE", *statuses, "Total"]
    table = [header] + [[str(row.get(column, 0 if column in statuses else "")) for column in header]
                        for row in [*rows, total]]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) if i < 2 else cell.rjust(width)
                       for i, (cell, width) in enumerate(zip(line, widths, strict=True))).rstrip()
             for line in table]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    script = Script("Pilot counts per site and CE, by status.", jsonOutput=True,
                    epilog="Example: dirac-wms-pilot-summary --since 2024-05-01 --vo dirac")
    script.parser.add_argument("--site", action="append", default=[], help="only this site (repeatable)")
    script.parser.add_argument("--ce", action="append", default=[], help="only this CE (repeatable)")
    script.parser.add_argument("--vo", action="append", default=[], help="only this VO (repeatable)")
    script.parser.add_argument("--status", action="append", default=[], help="only this status (repeatable)")
    script.parser.add_argument("--since", default=None, metavar="DATE", help="pilots submitted after DATE (UTC)")
    script.parser.add_argument("--until", default=None, metavar="DATE", help="pilots submitted before DATE (UTC)")
    args = script.parseArgs(argv)
    condDict = {name: values for name, values in (("GridSite", args.site), ("DestinationSite", args.ce),
                                                  ("VO", args.vo), ("Status", args.status)) if values}
    result = PilotManagerClient().getCounters("PilotAgents", ["GridSite", "DestinationSite", "Status"], condDict,
                                              args.since, "SubmissionTime", args.until)
    if not result["OK"]:
        return script.fail(result["Message"], pilotExitCode(result))
    script.output(summaryRows(result["Value"]), formatSummary)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
