"""Our submission-side JDL path (prepareJobs: parse, validate, processed JDL and requirements) on the same JDLs."""

from __future__ import annotations

import workloads


def main() -> None:
    from dirac.WorkloadManagementSystem.Logic.JobDescription import prepareJobs

    def submit(jobID: int, jdl: str) -> None:
        prepareJobs(jdl, workloads.OWNER, workloads.GROUP, workloads.VO)

    workloads.submitAll(submit)


if __name__ == "__main__":
    main()
