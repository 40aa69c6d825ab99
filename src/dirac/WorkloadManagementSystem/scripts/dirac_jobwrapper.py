"""dirac-jobwrapper: run one matched job on this worker node (started by the JobAgent).

    dirac-jobwrapper --job <workdir>/job.json

The working directory is the one holding job.json. The configuration is the pilot's
(``$DIRACSYSCONFIG``), the credential ``$X509_USER_PROXY``. Exit codes are in docs/jobwrapper.md.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

from dirac.Core.Base.Script import Script
from dirac.Core.Utilities.Exceptions import ConfigurationError, InvalidArgument
from dirac.Core.Utilities.Logging import setupLogging

EPILOG = """exit codes:
  0  the job is Done and everything was reported
  1  the job is Failed (application error, a Watchdog limit, a failed step), and that was reported
  2  bad command line, job.json or JobWrapper configuration: nothing was run
  5  the job was killed from the server: its status is the server's
  6  some reports could not be delivered: they are in JobWrapperPendingReports.json
  128+N  the wrapper was stopped by signal N from outside DIRAC: the job is reported Failed / Received Kill
         signal and rescheduled (or the reschedule is left in JobWrapperPendingReports.json)"""


def main(argv: list[str] | None = None) -> int:
    script = Script("Run one job matched by the JobAgent: input sandbox, payload under the Watchdog, outputs, "
                    "and every status on the way.", epilog=EPILOG)
    script.parser.add_argument("--job", required=True, metavar="JOB_JSON",
                               help="the job.json written by the JobAgent, in the job's working directory")
    args = script.parseArgs(argv)
    setupLogging("DEBUG" if args.debug else "INFO")

    from dirac.WorkloadManagementSystem.JobWrapper.JobArguments import JobArguments
    from dirac.WorkloadManagementSystem.JobWrapper.JobWrapper import EXIT_USAGE, JobWrapper
    from dirac.WorkloadManagementSystem.JobWrapper.Settings import JobWrapperSettings

    try:
        arguments = JobArguments.fromFile(args.job)
        settings = JobWrapperSettings.fromCS()
    except (InvalidArgument, ConfigurationError) as exc:
        return script.fail(exc.message, EXIT_USAGE)
    wrapper = JobWrapper(arguments, Path(args.job).absolute().parent, settings)

    def stop(signum: int, frame: FrameType | None) -> None:
        wrapper.interrupt(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return wrapper.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
