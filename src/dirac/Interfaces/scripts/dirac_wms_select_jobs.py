"""dirac-wms-select-jobs: the IDs of the jobs matching conditions."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import EXIT_OK, Script, exitCodeFor
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.Utilities.CommandTools import jobList, runCommand
from dirac.Interfaces.Utilities.JobSelection import checkDate, listOption

DEFAULT_MAXIMUM = 100
EPILOG = """Every condition takes one value or a comma-separated list.

Example:
  $ dirac-wms-select-jobs --Status Done,Failed --Date 2024-05-01
  ==> Selected 3 jobs with conditions: Status = Done,Failed, Date = 2024-05-01
  12,13,17"""


def main(argv: list[str] | None = None) -> int:
    script = Script("Select DIRAC jobs matching the given conditions.", jsonOutput=True, epilog=EPILOG)
    parser = script.parser
    for name, text in (("Status", "primary status"), ("MinorStatus", "secondary status"),
                       ("ApplicationStatus", "application status"), ("Site", "execution site"),
                       ("Owner", "owner (DIRAC user name)"), ("OwnerGroup", "owner's DIRAC group"),
                       ("JobGroup", "job group")):
        parser.add_argument(f"--{name}", type=listOption, metavar="VALUE", help=text)
    parser.add_argument("--Date", type=checkDate, metavar="YYYY-MM-DD",
                        help="jobs updated since this date (default: today, UTC)")
    parser.add_argument("--Maximum", type=int, default=DEFAULT_MAXIMUM, metavar="N",
                        help=f"show at most N jobs (default {DEFAULT_MAXIMUM}, 0 means all)")

    def body(args) -> int:  # noqa: ANN001
        jobGroups = args.JobGroup and args.JobGroup + [f"{int(g):08d}" for g in args.JobGroup if g.isdigit()]
        result = Dirac().selectJobs(status=args.Status, minorStatus=args.MinorStatus,
                                    applicationStatus=args.ApplicationStatus, site=args.Site, owner=args.Owner,
                                    ownerGroup=args.OwnerGroup, jobGroup=jobGroups, date=args.Date,
                                    printErrors=False)
        if not result["OK"]:
            return script.fail(result["Message"], exitCodeFor(result))
        jobIDs = [int(jobID) for jobID in result["Value"]]
        shown = jobIDs[:args.Maximum] if args.Maximum > 0 else jobIDs
        conditions = [f"{name} = {','.join(value)}" for name, value in vars(args).items()
                      if name in ("Status", "MinorStatus", "ApplicationStatus", "Site", "Owner", "OwnerGroup",
                                  "JobGroup") and value]
        conditions.append(f"Date = {args.Date or 'Today'}")

        def text(_: object) -> str:
            if not jobIDs:
                return f"No jobs were selected with conditions: {', '.join(conditions)}"
            limited = f" (first {len(shown)} shown)" if len(shown) < len(jobIDs) else ""
            return (f"==> Selected {len(jobIDs)} jobs{limited} with conditions: {', '.join(conditions)}\n"
                    f"{jobList(shown)}")

        script.output({"JobIDs": shown, "Total": len(jobIDs)}, text)
        return EXIT_OK

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(main())
