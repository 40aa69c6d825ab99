"""Our TaskQueueDB on MariaDB: insertJob for every waiting job, then claims from concurrent callers.

1. the jobs are written Waiting into JobDB first, in bulk and untimed (the Matcher of step 4
   needs them there), then queued with TaskQueueDB.insertJob one job per call, timed;
2. ``claim``: what the Matcher asks of TaskQueueDB for a pilot, without the job's status change
   (which DIRAC's matchAndGetJob does not do either): the eligible task queues for the resource
   looked up at every call as DIRAC does (matchingTaskQueues), a few drawn by fair share and the
   first free job taken (claimFirstJob), else all of them in weighted order;
3. (the same jobs stay Waiting in JobDB but are out of their queues: nobody matches them again)
4. ``requestJob``: our whole Matcher.requestJob in this process on what is left, as the Matcher
   service runs it (candidates cached 5 s, claim + Waiting -> Matched + logging record in one
   transaction): more work per job than DIRAC's matchAndGetJob.
"""

from __future__ import annotations

import random
import time

import workloads

ROUNDS = 3  # as DIRAC's matchAndGetJob: give up after three rounds lost to concurrent claims
SERVICE_CACHE_SECONDS = 5.0  # the Matcher service's default CandidatesCacheTime


def main() -> None:
    from sqlalchemy import func, select

    from benchmarks.bench_matcher import waitingJobRecords
    from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
    from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
    from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
    from dirac.WorkloadManagementSystem.Logic.Exceptions import NoMatchFound
    from dirac.WorkloadManagementSystem.Logic.Matcher import (
        SAMPLES,
        Candidates,
        Matcher,
        normaliseResource,
        weightedOrder,
    )

    settings = workloads.settings()
    db, jobDB = TaskQueueDB(), JobDB()
    jobs = workloads.waitingJobs(settings["jobs"], settings["taskQueues"])
    owners = [owner for _, owner, _, _ in jobs]
    jobIDs = [jobID for start in range(0, len(owners), 5000)
              for jobID in jobDB.insertNewJobs(waitingJobRecords(owners[start:start + 5000]))]
    began = time.perf_counter()
    for done, (jobID, (_, owner, cpuTime, sites)) in enumerate(zip(jobIDs, jobs, strict=True), start=1):
        db.insertJob(jobID, {"Owner": owner, "OwnerGroup": workloads.GROUP, "VO": workloads.VO, "JobType": "User",
                             "CPUTime": cpuTime, "Sites": sites}, 1)
        if done % 5000 == 0 or done == len(jobIDs):
            workloads.progress(done, len(jobIDs), "waiting jobs inserted by our TaskQueueDB.insertJob")
    insertRate = len(jobIDs) / (time.perf_counter() - began)
    rng = random.Random()

    def claim() -> int | None:
        for _ in range(ROUNDS):
            candidates = Candidates.build(db.matchingTaskQueues(normaliseResource(workloads.RESOURCE)))
            if not candidates.ids:
                return None
            picks = candidates.sample(rng, SAMPLES)
            taken = db.claimFirstJob(picks)
            if taken.jobID is None:
                taken = db.claimFirstJob([tq for tq in weightedOrder(candidates.weights, rng) if tq not in picks])
            if taken.jobID is not None:
                return taken.jobID
        raise RuntimeError(f"no job claimed in {ROUNDS} rounds while task queues were left")

    def queued() -> int:
        with db.connection("count") as conn:
            return int(conn.scalar(select(func.count()).select_from(db.tqJobs)))

    claimed = workloads.concurrentCalls(settings["callers"], settings["seconds"], lambda: claim)
    left = queued()
    figures = {"insertPerSecond": insertRate, **workloads.matchFigures(claimed, len(jobIDs), left)}

    matcher = Matcher(jobDB, JobLoggingDB(), db, candidatesCacheTime=SERVICE_CACHE_SECONDS)

    def requestJob() -> int | None:
        try:
            return int(matcher.requestJob(workloads.RESOURCE)["JobID"])
        except NoMatchFound:
            return None

    requested = workloads.concurrentCalls(settings["callers"], settings["seconds"], lambda: requestJob)
    figures["requestJob"] = {**workloads.matchFigures(requested, left, queued()),
                             "matchedInJobDB": jobDB.countJobs({"Status": "Matched"})}
    workloads.report(figures)


if __name__ == "__main__":
    main()
