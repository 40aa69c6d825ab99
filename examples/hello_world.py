#!/usr/bin/env python3
"""Submit a hello-world job through the public API, follow it until it ends, print its output.

Run it against a started grid (``source instance/bashrc`` first). The job goes through the
whole chain: JobManager -> optimizers -> task queue -> a pilot started by the SiteDirector ->
the JobAgent's Matcher request -> the JobWrapper -> the output sandbox.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.API.Job import Job

FINAL = ("Done", "Failed", "Killed", "Deleted")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the job")
    args = parser.parse_args()

    dirac = Dirac()
    job = Job()
    job.setName("HelloWorld")
    job.setCPUTime(500)
    job.setExecutable("/bin/echo hello world from a DIRAC pilot")
    result = dirac.submitJob(job)
    if not result["OK"]:
        print(f"submission failed: {result['Message']}", file=sys.stderr)
        return 1
    jobID = result["Value"]
    print(f"job {jobID} submitted; waiting for a pilot to run it")

    started, last = time.monotonic(), None
    while True:
        status = dirac.getJobStatus(jobID)
        if not status["OK"]:
            print(f"cannot get the status: {status['Message']}", file=sys.stderr)
            return 1
        info = status["Value"][jobID]
        now = (info["Status"], info["MinorStatus"])
        if now != last:
            print(f"  {time.monotonic() - started:5.1f} s  {info['Status']:<10} {info['MinorStatus']}"
                  + (f"  at {info['Site']}" if info["Site"] not in ("", "ANY", "Unknown") else ""), flush=True)
            last = now
        if info["Status"] in FINAL:
            break
        if time.monotonic() - started > args.timeout:
            print(f"job {jobID} did not end in {args.timeout:.0f} s", file=sys.stderr)
            return 1
        time.sleep(1)

    outputDir = Path(tempfile.mkdtemp(prefix="dirac-hello-"))
    output = dirac.getJobOutputSandbox(jobID, outputDir=str(outputDir))
    if not output["OK"]:
        print(f"cannot get the output sandbox: {output['Message']}", file=sys.stderr)
        return 1
    print(f"output sandbox of job {jobID} in {outputDir / str(jobID)}:")
    for name in output["Value"]:
        print(f"--- {name}")
        print((outputDir / str(jobID) / name).read_text(errors="replace").rstrip())
    return 0 if info["Status"] == "Done" else 1


if __name__ == "__main__":
    sys.exit(main())
