"""dstat: a table of your jobs (COMDIRAC), by default those not yet finished of the last 10 days."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import EXIT_NOT_FOUND, EXIT_OK, Script, exitCodeFor
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.Utilities.CommandTools import (
    TABLE_FORMATS,
    CommandFailed,
    UsageError,
    formatTable,
    parseJobIDs,
    plain,
    readJobIDFile,
    runCommand,
    say,
)
from dirac.Interfaces.Utilities.JobSelection import (
    ACTIVE_STATES,
    callerName,
    daysAgo,
    jobSummaries,
    listOption,
    statusList,
)

DEFAULT_FIELDS = ["Owner", "JobName", "OwnerGroup", "JobGroup", "Site", "Status", "MinorStatus", "SubmissionTime"]
EXTRA_FIELDS = ["JobType", "ApplicationStatus", "StartExecTime", "EndExecTime", "CPUTime"]
EPILOG = f"""Without job IDs: your jobs of the last --JobDate days, in the statuses of --Status
(default: those not finished: {', '.join(ACTIVE_STATES)}).
With job IDs: those jobs, in any status unless --Status is given.

Examples:
  $ dstat                      # my unfinished jobs
  $ dstat -a -D 30             # all my jobs of the last 30 days
  $ dstat -S Failed -F Site,MinorStatus
  $ dstat --all -S Running     # everybody's running jobs (JobAdministrator, JobMonitor)"""


def main(argv: list[str] | None = None) -> int:
    script = Script("Show the status of your jobs as a table.", jsonOutput=True, epilog=EPILOG)
    parser = script.parser
    parser.add_argument("jobIDs", nargs="*", metavar="JobID", help="DIRAC job IDs (also '12,13')")
    parser.add_argument("-u", "--User", metavar="NAME", help="jobs of this owner ('*' for every owner)")
    parser.add_argument("--all", dest="allUsers", action="store_true",
                        help="jobs of every owner you may see (same as -u '*')")
    parser.add_argument("-S", "--Status", type=statusList, metavar="S1,S2", help="only jobs in these statuses")
    parser.add_argument("-a", "--StatusAll", action="store_true", help="jobs in any status")
    parser.add_argument("-g", "--JobGroup", type=listOption, metavar="GROUP", help="only jobs of this job group")
    parser.add_argument("-n", "--JobName", type=listOption, metavar="NAME", help="only jobs of this name")
    parser.add_argument("-f", "--Fmt", choices=TABLE_FORMATS, default="pretty", help="display format")
    parser.add_argument("-D", "--JobDate", type=int, default=10, metavar="DAYS",
                        help="jobs updated in the last DAYS days (default 10)")
    parser.add_argument("-F", "--Fields", type=listOption, default=DEFAULT_FIELDS, metavar="F1,F2",
                        help=f"columns to show besides JobID (default {','.join(DEFAULT_FIELDS)}; "
                             f"also e.g. {','.join(EXTRA_FIELDS)})")
    parser.add_argument("-i", "--input-file", dest="inputFile", metavar="FILE", help="read job IDs from FILE")

    def body(args) -> int:  # noqa: ANN001
        dirac = Dirac()
        jobIDs = parseJobIDs(args.jobIDs) + (readJobIDFile(args.inputFile) if args.inputFile else [])
        statuses = None if args.StatusAll else args.Status
        given = bool(jobIDs)
        if not given:
            owner = None if args.allUsers or args.User in ("*", "__all__") else args.User
            if owner is None and not (args.allUsers or args.User):
                who = callerName()
                if not who["OK"]:
                    raise CommandFailed(who["Message"], exitCodeFor(who))
                owner = who["Value"]
            selected = dirac.selectJobs(status=None if args.StatusAll else (args.Status or ACTIVE_STATES), owner=owner,
                                        jobGroup=args.JobGroup, jobName=args.JobName, date=daysAgo(args.JobDate),
                                        printErrors=False)
            if not selected["OK"]:
                raise CommandFailed(selected["Message"], exitCodeFor(selected))
            jobIDs = parseJobIDs(selected["Value"])
        summaries = jobSummaries(dirac, jobIDs)
        if not summaries["OK"]:
            raise CommandFailed(summaries["Message"], exitCodeFor(summaries))
        found = summaries["Value"]
        known = next(iter(found.values()), None)
        unknown = [field for field in args.Fields if known is not None and field not in known]
        if unknown:
            raise UsageError(f"unknown field(s) {', '.join(unknown)}: use job attributes such as "
                             f"{', '.join(DEFAULT_FIELDS + EXTRA_FIELDS)}")
        rows = [{"JobID": jobID, **{field: found[jobID].get(field) for field in args.Fields}}
                for jobID in sorted(found) if not statuses or found[jobID].get("Status") in statuses]
        columns = ["JobID", *args.Fields]
        if script.wantsJSON:
            script.output(plain(rows))
        else:
            print(formatTable(columns, rows, args.Fmt))
        missing = [jobID for jobID in jobIDs if jobID not in found] if given else []
        for jobID in missing:
            say(f"ERROR: job {jobID}: no such job", error=True)
        return EXIT_NOT_FOUND if missing else EXIT_OK

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
