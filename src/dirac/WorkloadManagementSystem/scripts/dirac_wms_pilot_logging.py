"""dirac-wms-pilot-logging: the log lines a pilot streamed while running; --follow keeps printing new ones."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from dirac.Core.Base.Script import EXIT_OK, EXIT_USAGE, Script
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotLoggingClient, pilotExitCode


class LogReader:
    """Fetches the lines of pilots, page after page, and prints them."""

    def __init__(self, client: PilotLoggingClient, headers: bool):
        self.client = client
        self.headers = headers
        self.lastPrinted: str | None = None

    def fetch(self, answer: dict[str, Any]) -> dict[str, Any]:
        """The next lines of the pilot of ``answer`` (all pages); _CallFailed carries a failed call's result."""
        target = answer["PilotJobReference"] or answer["PilotStamp"]
        result = self.client.getPilotLogs(target, answer["LastSequence"])
        if not result["OK"]:
            raise _CallFailed(result)
        return self.complete(result["Value"])

    def complete(self, answer: dict[str, Any]) -> dict[str, Any]:
        """``answer`` with the lines of its further pages, when MaxLinesPerAnswer cut it."""
        while answer["More"]:
            result = self.client.getPilotLogs(answer["PilotJobReference"] or answer["PilotStamp"],
                                              answer["LastSequence"])
            if not result["OK"]:
                raise _CallFailed(result)
            answer = {**result["Value"], "Lines": answer["Lines"] + result["Value"]["Lines"]}
        return answer

    def show(self, answer: dict[str, Any]) -> None:
        name = answer["PilotJobReference"] or answer["PilotStamp"]
        if self.headers and answer["Lines"] and self.lastPrinted != name:
            print(f"== pilot {name} [{answer['Status'] or 'not registered'}] ==")
            self.lastPrinted = name
        for row in answer["Lines"]:
            print(row["Line"])
        sys.stdout.flush()

    def follow(self, answers: list[dict[str, Any]], interval: float) -> None:
        """Print new lines until every pilot is final (one last fetch after it became final)."""
        active = list(answers)
        while active:
            time.sleep(interval)
            for answer in list(active):
                new = self.fetch(answer)
                self.show(new)
                if answer["Final"]:  # this fetch started after the pilot ended: nothing more will come
                    active.remove(answer)
                answer.update(new)


class _CallFailed(Exception):
    def __init__(self, result: dict):
        super().__init__(result["Message"])
        self.result = result


def body(script: Script, args: argparse.Namespace) -> int:
    if bool(args.pilot) == bool(args.job):
        return script.fail("give a pilot reference or stamp, or --job JOBID (not both)", EXIT_USAGE)
    if args.follow and script.wantsJSON:
        return script.fail("--follow prints lines as they come: it cannot be combined with --json", EXIT_USAGE)
    client = PilotLoggingClient()
    result = client.getJobPilotLogs(args.job, args.since) if args.job else client.getPilotLogs(args.pilot, args.since)
    if not result["OK"]:
        return script.fail(result["Message"], pilotExitCode(result))
    reader = LogReader(client, headers=bool(args.job))
    try:
        answers = [reader.complete(answer) for answer in (result["Value"] if args.job else [result["Value"]])]
        if script.wantsJSON:
            script.output(answers if args.job else answers[0])
            return EXIT_OK
        for answer in answers:
            reader.show(answer)
        if args.follow:
            reader.follow(answers, args.interval)
    except _CallFailed as failed:
        return script.fail(failed.result["Message"], pilotExitCode(failed.result))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    script = Script("Print the log lines a pilot sent while running (by pilot reference or stamp, or by job).",
                    jsonOutput=True,
                    epilog="Examples:\n  dirac-wms-pilot-logging local://ce.example.org/5f0c1e2d3a4b5c6d --follow\n"
                           "  dirac-wms-pilot-logging --job 1234")
    script.parser.add_argument("pilot", nargs="?", metavar="reference|stamp")
    script.parser.add_argument("--job", type=int, metavar="JOBID", help="the logs of the pilots that ran this job")
    script.parser.add_argument("-f", "--follow", action="store_true",
                               help="keep printing new lines until the pilot has ended")
    script.parser.add_argument("--since", type=int, default=0, metavar="SEQUENCE",
                               help="only the lines after this sequence number")
    script.parser.add_argument("--interval", type=float, default=5.0, metavar="SECONDS",
                               help="how often --follow asks for new lines (default 5)")
    return script.run(lambda args: body(script, args), argv)


if __name__ == "__main__":
    sys.exit(main())
