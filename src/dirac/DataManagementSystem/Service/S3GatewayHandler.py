"""DataManagement/S3Gateway: pre-signed URLs for the S3 Storage Elements whose keys only this server holds.

DIRAC's service and method: ``createPresignedUrl(storageName, s3_method, urls, expiration)`` answers
``{"Successful": {url: pre-signed URL}, "Failed": {url: reason}}``; each URL is given only when the
File Catalog lets the caller do what the method does on that LFN (``Logic/S3Gateway.py``).
"""

from __future__ import annotations

from typing import ClassVar

from dirac.Core.Config import gConfig
from dirac.Core.Config.PathFinder import getServiceSection
from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import RequestHandler, ServiceInfo
from dirac.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from dirac.DataManagementSystem.Logic.CatalogSecurity import CatalogSettings, FileCatalogBase
from dirac.DataManagementSystem.Logic.S3Gateway import presignedUrls, s3PluginOf

CALLERS = [Properties.NormalUser, Properties.FileCatalogManagement, Properties.TrustedHost]


class S3GatewayHandler(RequestHandler):
    """The S3Gateway service."""

    catalog: ClassVar[FileCatalogBase]
    maxExpiration: ClassVar[int]

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        settings = CatalogSettings.fromCS(getServiceSection("DataManagement/FileCatalog"))
        cls.catalog = FileCatalogBase(FileCatalogDB(), settings)
        cls.maxExpiration = int(gConfig.getValue(f"{serviceInfo.section}/MaxExpiration", 86400))

    auth_createPresignedUrl = CALLERS

    def export_createPresignedUrl(self, storageName: str, s3_method: str, urls: str | list | dict,
                                  expiration: int = 3600) -> dict:
        """{url: pre-signed URL} for an S3 method (get_object, put_object, ...) on LFNs or s3:// URLs of an SE."""
        answer = presignedUrls(self.catalog, self.credDict, s3PluginOf(storageName), s3_method, urls, expiration,
                               self.maxExpiration)
        who = self.credDict.get("username") or self.credDict.get("hostname")
        self.log.info("%s: %d %s URL(s) signed for %s, %d refused", storageName, len(answer["Successful"]),
                      s3_method, who, len(answer["Failed"]))
        return answer
