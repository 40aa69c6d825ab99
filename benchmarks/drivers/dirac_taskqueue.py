"""DIRAC's TaskQueueDB on MariaDB (DIRAC venv only): insertJob for every waiting job, then matchAndGetJob.

The resource description goes through DIRAC's own Matcher._processResourceDescription (as its
Matcher service does for each pilot request) and then to TaskQueueDB.matchAndGetJob, from
``callers`` threads at once for ``seconds``. Afterwards every JobID handed out is checked:
none twice, and as many left tq_Jobs as were handed out.
"""

from __future__ import annotations

import time

import workloads


def main() -> None:
    workloads.initialiseDIRAC()
    from DIRAC.WorkloadManagementSystem.Client.Matcher import Matcher
    from DIRAC.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB

    settings = workloads.settings()
    db = TaskQueueDB()
    jobs = workloads.waitingJobs(settings["jobs"], settings["taskQueues"])
    began = time.perf_counter()
    for done, (jobID, owner, cpuTime, sites) in enumerate(jobs, start=1):
        requirements = {"Owner": owner, "OwnerGroup": workloads.GROUP, "JobTypes": ["User"], "CPUTime": cpuTime}
        result = db.insertJob(jobID, {**requirements, "Sites": sites} if sites else requirements, 1)
        if not result["OK"]:
            raise RuntimeError(f"TaskQueueDB.insertJob({jobID}): {result['Message']}")
        if done % 5000 == 0 or done == len(jobs):
            workloads.progress(done, len(jobs), "waiting jobs inserted by DIRAC's TaskQueueDB.insertJob")
    insertRate = len(jobs) / (time.perf_counter() - began)

    # only its resource translation is used: the other databases are never touched
    matcher = Matcher(pilotAgentsDB=object(), jobDB=object(), tqDB=db, jlDB=object(), opsHelper=object())

    def match() -> int | None:
        result = db.matchAndGetJob(matcher._processResourceDescription(workloads.RESOURCE))
        if not result["OK"]:
            raise RuntimeError(f"TaskQueueDB.matchAndGetJob: {result['Message']}")
        return int(result["Value"]["jobId"]) if result["Value"]["matchFound"] else None

    matched = workloads.concurrentCalls(settings["callers"], settings["seconds"], lambda: match)
    remaining = db._query("SELECT COUNT(*) FROM tq_Jobs")
    if not remaining["OK"]:
        raise RuntimeError(remaining["Message"])
    workloads.report({"insertPerSecond": insertRate,
                      **workloads.matchFigures(matched, len(jobs), int(remaining["Value"][0][0]))})


if __name__ == "__main__":
    main()
