"""dirac-rms-request: show requests (by ID, name, job or status), reset failed ones, cancel them, finish their jobs.

DIRAC's command and switches. Users see their own requests, operators all of them.
"""

from __future__ import annotations

import datetime
import os
import sys
from typing import Any

from dirac.Core.Base.Script import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, Script, exitCodeFor
from dirac.Interfaces.Utilities.CommandTools import worstExitCode
from dirac.RequestManagementSystem.Client import Request as RequestStatus
from dirac.RequestManagementSystem.Client.Operation import timeText
from dirac.RequestManagementSystem.Client.ReqClient import ReqClient
from dirac.RequestManagementSystem.Client.Request import Request

EPILOG = """Examples:
  dirac-rms-request 12                       # request 12: its operations, each one's files counted by status
  dirac-rms-request job_1234 --Full          # by name, every file with its attempts and error
  dirac-rms-request --Job 1234,1235          # the requests of jobs
  dirac-rms-request --Status Failed --Since 7 --Terse   # failed in the last 7 days, one line each
  dirac-rms-request 12 --Reset               # Failed files and operations Waiting again, due now
  dirac-rms-request 12 --Cancel
  dirac-rms-request --Status Done --FixJob   # jobs of Done requests left Completed: Done
"""


def parseDate(text: str) -> datetime.datetime:
    """YYYY-mm-dd, or a number of days back from now."""
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=datetime.UTC)
    except ValueError:
        pass
    try:
        return datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=float(text))
    except ValueError:
        raise ValueError(f"{text!r} is neither YYYY-mm-dd nor a number of days") from None


def requestArguments(values: list[str]) -> list[str]:
    """Request IDs or names from arguments ('12', '12,13', 'job_7') and files listing them."""
    found: list[str] = []
    for value in values:
        if os.path.isfile(value):
            with open(value) as listing:
                found += [word for line in listing for word in line.replace(",", " ").split()]
        else:
            found += [word for word in value.split(",") if word]
    return found


def formatRequest(request: Request, dbStatus: str, full: bool = False, terse: bool = False) -> str:
    """A request as text: one line with --Terse; its operations (and with --Full each file) otherwise."""
    shown = request.Status if dbStatus == request.Status else f"{request.Status} ({dbStatus} in the DB)"
    head = f"Request {request.RequestID} '{request.RequestName}' {shown}"
    if terse:
        return head + (f" JobID={request.JobID}" if request.JobID else "")
    lines = [head, f"  Owner: {request.Owner}@{request.OwnerGroup}" + (f", JobID {request.JobID}" if request.JobID
                                                                         else ""),
             f"  Created {timeText(request.CreationTime)}, updated {timeText(request.LastUpdate)}, not before "
             f"{timeText(request.NotBefore)} UTC"]
    if request.Error:
        lines.append(f"  Error: {request.Error}")
    for operation in request:
        where = ", ".join(f"{name} {value}" for name, value in (("from", operation.SourceSE),
                                                                ("to", operation.TargetSE)) if value)
        lines.append(f"  [{operation.Order}] {operation.Type} {operation.Status}" + (f" ({where})" if where else "")
                     + (f", attempt {operation.Attempt}" if not len(operation) and operation.Attempt else ""))
        if operation.Error:
            lines.append(f"      Error: {operation.Error}")
        if len(operation):
            counts: dict[str, int] = {}
            for opFile in operation:
                counts[opFile.Status] = counts.get(opFile.Status, 0) + 1
            lines.append("      Files: " + ", ".join(f"{count} {status}" for status, count in sorted(counts.items())))
        for opFile in operation if full else []:
            lines.append(f"      {opFile.LFN} {opFile.Status}, attempt {opFile.Attempt}"
                         + (f": {opFile.Error}" if opFile.Error else ""))
    return "\n".join(lines)


def _selected(client: ReqClient, args: Any) -> tuple[list[int], int]:
    """(request IDs to act on, exit code of what could not be found)."""
    code = EXIT_OK
    ids: list[int] = []
    if args.Job:
        jobs = [int(word) for word in args.Job.replace(",", " ").split()]
        found = client.getRequestIDsForJobs(jobs)
        if not found["OK"]:
            raise LookupError(found)
        if found["Value"]["Failed"]:
            print(f"ERROR: no request for job(s) {', '.join(map(str, sorted(found['Value']['Failed'])))}",
                  file=sys.stderr)
            code = EXIT_NOT_FOUND
        ids += [found["Value"]["Successful"][job] for job in jobs if job in found["Value"]["Successful"]]
    for word in requestArguments(args.requests):
        if word.isdigit():
            ids.append(int(word))
            continue
        found = client.getRequestIDForName(word)
        if not found["OK"]:
            print(f"ERROR: {found['Message']}", file=sys.stderr)
            code = worstExitCode([code, exitCodeFor(found)])
        else:
            ids.append(found["Value"])
    if args.Status:
        until = parseDate(args.Until) if args.Until else None
        since = parseDate(args.Since) if args.Since else (until or datetime.datetime.now(datetime.UTC)) - \
            datetime.timedelta(days=1)
        listed = client.getRequestIDsList([args.Status], args.Maximum, since, until)
        if not listed["OK"]:
            raise LookupError(listed)
        ids += [row[0] for row in listed["Value"]]
    return list(dict.fromkeys(ids)), code


def main(argv: list[str] | None = None) -> int:
    script = Script("Show requests of the Request Management System (by ID or name, job, status); reset, cancel "
                    "them, finish the jobs of Done ones.", jsonOutput=True, epilog=EPILOG)
    parser = script.parser
    parser.add_argument("requests", nargs="*", metavar="request", help="request IDs or names (comma-separated "
                        "allowed), or files listing them")
    parser.add_argument("--Job", metavar="ID[,ID...]", help="the requests of these jobs")
    parser.add_argument("--Status", help="the requests in this status (Waiting, Assigned, Done, Failed, Canceled)")
    parser.add_argument("--Since", help="with --Status: updated since YYYY-mm-dd or N days ago (default: 1 day)")
    parser.add_argument("--Until", help="with --Status: updated until YYYY-mm-dd or N days ago (default: now)")
    parser.add_argument("--Maximum", type=int, default=100, help="with --Status: at most this many (100)")
    parser.add_argument("--TargetSE", help="only requests with an operation to one of these SEs (comma-separated)")
    show = parser.add_mutually_exclusive_group()
    show.add_argument("--Full", action="store_true", help="every file with its status, attempts and error")
    show.add_argument("--Terse", action="store_true", help="one line per request")
    act = parser.add_mutually_exclusive_group()
    act.add_argument("--Reset", action="store_true", help="Failed files and operations back to Waiting, due now")
    act.add_argument("--Cancel", action="store_true", help="cancel the requests")
    act.add_argument("--FixJob", action="store_true", help="finish the job of each Done request left Completed")
    parser.add_argument("--Force", action="store_true", help="with --Reset: also requests that are not Failed")
    parser.add_argument("--ListJobs", action="store_true", help="also list the jobs of the requests")
    args = script.parseArgs(argv)
    if not (args.requests or args.Job or args.Status):
        return script.fail("give request IDs or names, --Job or --Status (see --help)", EXIT_USAGE)
    if args.Status:
        args.Status = args.Status.capitalize()
        if args.Status not in RequestStatus.ALL_STATES:
            return script.fail(f"unknown status {args.Status} (known: {', '.join(RequestStatus.ALL_STATES)})",
                               EXIT_USAGE)
    client = ReqClient()
    try:
        ids, code = _selected(client, args)
    except LookupError as exc:
        return script.fail(exc.args[0]["Message"], exitCodeFor(exc.args[0]))
    except ValueError as exc:
        return script.fail(str(exc), EXIT_USAGE)
    shown: list[dict[str, Any]] = []
    texts: list[str] = []
    targets = set(args.TargetSE.split(",")) if args.TargetSE else set()
    for requestID in ids:
        peeked = client.peekRequest(requestID)
        if not peeked["OK"]:
            print(f"ERROR: request {requestID}: {peeked['Message']}", file=sys.stderr)
            code = worstExitCode([code, exitCodeFor(peeked)])
            continue
        request: Request = peeked["Value"]
        if targets and not any(targets & set(operation.targetSEList) for operation in request):
            continue
        outcome = _act(client, request, args)
        if outcome.startswith("ERROR"):
            print(outcome, file=sys.stderr)
            code = worstExitCode([code, EXIT_FAILED])
        status = client.getRequestStatus(requestID)
        dbStatus = status["Value"] if status["OK"] else "Unknown"
        if outcome and not outcome.startswith("ERROR"):
            texts.append(outcome)
            request = client.peekRequest(requestID).get("Value") or request
        texts.append(formatRequest(request, dbStatus, args.Full, args.Terse))
        shown.append({**request.toDict(), "DBStatus": dbStatus, **({"Action": outcome} if outcome else {})})
    if args.ListJobs:
        texts.append("Jobs: " + ",".join(str(item["JobID"]) for item in shown if item["JobID"]))
    script.output(shown, lambda _: "\n\n".join(texts) if not args.Terse else "\n".join(texts))
    return code


def _act(client: ReqClient, request: Request, args: Any) -> str:
    """Carry out --Reset, --Cancel or --FixJob on one request: what happened ('' when nothing was asked)."""
    requestID = request.RequestID
    if args.Cancel:
        result = client.cancelRequest(requestID)
        return f"Request {requestID} canceled" if result["OK"] else f"ERROR: request {requestID}: {result['Message']}"
    if args.Reset:
        result = client.resetFailedRequest(requestID, allR=args.Force)
        if not result["OK"]:
            return f"ERROR: request {requestID}: {result['Message']}"
        return f"Request {requestID} not reset: it is {request.Status}" if result["Value"] == "Not reset" \
            else f"Request {requestID} reset"
    if args.FixJob:
        if request.Status != RequestStatus.DONE or not request.JobID:
            return f"Request {requestID}: no job to finish ({request.Status}, JobID {request.JobID})"
        result = client.finalizeRequest(requestID, request.JobID, useCertificates=False)
        if not result["OK"]:
            return f"ERROR: job {request.JobID}: {result['Message']}"
        return f"Job {request.JobID} " + (f"set {result['Value']}" if result["Value"] else "left as it is")
    return ""


if __name__ == "__main__":
    sys.exit(main())
