"""The InputData optimizer against the real File Catalog service, with the server's own credentials.

Bob registers files in a directory closed to others (mode 700); the optimizer, running with
the host certificate as it does in the server, still sees their replicas and places each job
at the sites whose Storage Elements hold all its files.
"""

from __future__ import annotations

import secrets

from dirac.Core.Config import gConfig
from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.Executor.InputData import InputData
from dirac.WorkloadManagementSystem.Logic.Optimization import OptimizationTask

SITES = {"LCG.CERN.ch": "CERN-DISK", "LCG.PIC.es": "PIC-DISK", "LCG.RAL.uk": "RAL-DISK"}


def test_inputData_isResolvedThroughTheFileCatalogService_evenInAClosedDirectory(anyGrid) -> None:
    area = f"/dirac/user/b/bob/inputdata-{secrets.token_hex(4)}"
    bob = FileCatalogClient(proxyLocation=str(anyGrid.proxies["bob"]), useCertificates=False)
    files = {f"{area}/f1": ["CERN-DISK", "PIC-DISK"], f"{area}/f2": ["PIC-DISK", "RAL-DISK"]}
    added = bob.addFile({lfn: {"PFN": "", "SE": ses, "Size": 10, "Checksum": "0a0b0c0d", "GUID": secrets.token_hex(8)}
                         for lfn, ses in files.items()})
    assert added["OK"] and set(added["Value"]["Successful"]) == set(files), added
    closed = bob.changePathMode({area: 0o700})
    assert closed["OK"] and area in closed["Value"]["Successful"], closed

    gConfig.initialize(options={**{f"/Resources/Sites/LCG/{site}/SE": se for site, se in SITES.items()},
                                "/DIRAC/Security/UseServerCertificate": "yes",
                                "/DIRAC/Security/CertFile": str(anyGrid.instance.hostCert),
                                "/DIRAC/Security/KeyFile": str(anyGrid.instance.hostKey)})
    placed = OptimizationTask(1, {}, "", inputData=list(files))
    lost = OptimizationTask(2, {}, "", inputData=[f"{area}/f1", f"{area}/lost"])
    InputData().optimize([placed, lost])  # the resolver named by the CS: DataManagement/FileCatalog
    assert placed.active and placed.siteCandidates == {"LCG.PIC.es"}
    assert lost.failure is not None and lost.failure.minorStatus == JobMinorStatus.INPUT_NOT_AVAILABLE
    assert f"{area}/lost" in lost.failure.applicationStatus
