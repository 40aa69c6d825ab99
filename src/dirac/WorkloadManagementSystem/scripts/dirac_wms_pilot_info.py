"""dirac-wms-pilot-info: what the PilotManager knows about pilots (status, place, jobs)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from dirac.Core.Base.Script import EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, Script
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotManagerClient, pilotExitCode

FIELDS = (("Status", "Status"), ("StatusReason", "Reason"), ("PilotStamp", "Stamp"), ("GridSite", "Site"),
          ("DestinationSite", "CE"), ("Queue", "Queue"), ("VO", "VO"), ("GridType", "CE type"),
          ("BenchMark", "Benchmark"), ("SubmissionTime", "Submitted"), ("LastUpdateTime", "Last update"),
          ("Jobs", "Jobs"))


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S} UTC"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def formatPilots(pilots: dict[str, dict[str, Any]]) -> str:
    """One block per pilot: its reference, then one line per attribute."""
    blocks = []
    for ref in sorted(pilots, key=lambda r: pilots[r].get("PilotID", 0)):
        pilot = pilots[ref]
        lines = [ref] + [f"  {label + ':':13}{_text(pilot[key])}" for key, label in FIELDS if key in pilot]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    script = Script("Show the status, place and jobs of pilots, given their references or a job they ran.",
                    jsonOutput=True, epilog="Examples:\n  dirac-wms-pilot-info local://ce.example.org/5f0c1e2d3a4b5c6d\n"
                                            "  dirac-wms-pilot-info --job 1234")
    script.parser.add_argument("references", nargs="*", metavar="reference", help="pilot reference(s)")
    script.parser.add_argument("--job", type=int, metavar="JOBID", help="the pilots that ran this job")
    args = script.parseArgs(argv)
    if bool(args.references) == bool(args.job):
        return script.fail("give pilot references or --job JOBID (not both)", EXIT_USAGE)
    client = PilotManagerClient()
    result = client.getPilots(args.job) if args.job else client.getPilotInfo(args.references)
    if not result["OK"]:
        return script.fail(result["Message"], pilotExitCode(result))
    missing = [ref for ref in args.references if ref not in result["Value"]]
    script.output(result["Value"], formatPilots)
    if missing:  # on stderr: with --json, stdout stays one JSON document
        print(f"ERROR: No pilots found for PilotJobReference(s): {', '.join(missing)}", file=sys.stderr)
        return EXIT_NOT_FOUND
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
