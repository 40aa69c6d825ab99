"""DIRAC's own submission-side JDL path on the job descriptions of workloads.jobDescriptions (DIRAC venv only).

The steps DIRAC 9's JobManager.submitJob and JobDB.insertNewJobIntoDB take on each description,
without the database writes: ClassAd, parametric check, jdlToBaseJobDescriptionModel and
JobDescriptionModel validation (JobManager); checkAndAddOwner (JobManifest load and check),
fixJDL, checkAndPrepareJob and createJDLWithInitialStatus (JobDB).
"""

from __future__ import annotations

import warnings

import workloads


def main() -> None:
    workloads.initialiseDIRAC()
    from DIRAC.ConfigurationSystem.Client.Helpers.Registry import getVOForGroup
    from DIRAC.Core.Utilities.ClassAd.ClassAdLight import ClassAd
    from DIRAC.Core.Utilities.JDL import jdlToBaseJobDescriptionModel
    from DIRAC.WorkloadManagementSystem.DB.JobDBUtils import (
        checkAndAddOwner,
        checkAndPrepareJob,
        createJDLWithInitialStatus,
        fixJDL,
    )
    from DIRAC.WorkloadManagementSystem.Utilities.JobModel import JobDescriptionModel
    from DIRAC.WorkloadManagementSystem.Utilities.ParametricJob import getParameterVectorLength

    owner, group = workloads.OWNER, workloads.GROUP
    # JobManager.submitJob's own call, model.dict(), is deprecated in pydantic 2: do not time the warning
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    def submit(jobID: int, jdl: str) -> str:
        jdl = jdl.strip()
        classAd = ClassAd(jdl)
        vector = getParameterVectorLength(classAd)
        if not vector["OK"] or vector["Value"]:
            raise ValueError(f"unexpected parametric check: {vector}")
        model = jdlToBaseJobDescriptionModel(ClassAd(jdl))
        if not model["OK"]:
            raise ValueError(model["Message"])
        JobDescriptionModel(**model["Value"].dict(exclude_none=True), owner=owner, ownerGroup=group,
                            vo=getVOForGroup(group))
        manifest = checkAndAddOwner(jdl, owner, group)
        if not manifest["OK"]:
            raise ValueError(manifest["Message"])
        fixJDL(jdl)
        manifest["Value"].setOption("JobID", jobID)
        classAdJob = ClassAd(manifest["Value"].dumpAsJDL())
        classAdReq = ClassAd("[]")
        classAdJob.insertAttributeInt("JobID", jobID)
        jobAttrs = {"Owner": owner, "OwnerGroup": group, "VO": getVOForGroup(group)}
        prepared = checkAndPrepareJob(jobID, classAdJob, classAdReq, owner, group, jobAttrs, getVOForGroup(group))
        if not prepared["OK"]:
            raise ValueError(prepared["Message"])
        return createJDLWithInitialStatus(classAdJob, classAdReq, ["JobName", "JobType", "JobGroup"], jobAttrs,
                                          "Received", "Job accepted")

    workloads.submitAll(submit)


if __name__ == "__main__":
    main()
