"""Configuration/Server: serves the central configuration and takes admins' commits.

Clients poll ``getCompressedDataIfNewer(theirVersion)`` and get the data only when it
changed. Configuration data travel as base64 of zlib-compressed CFG text.
"""

from __future__ import annotations

from pathlib import Path

from dirac.ConfigurationSystem.Logic.MasterConfiguration import MasterConfiguration, compress, decompress
from dirac.Core.Config import gConfig
from dirac.Core.Config.PathFinder import getServiceSection
from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import ConfigurationError


class ConfigurationHandler(RequestHandler):
    """The Configuration Service."""

    master: MasterConfiguration | None = None

    @classmethod
    def loadMaster(cls) -> MasterConfiguration:
        """Load the master configuration and serve it to this process's gConfig (idempotent)."""
        if getattr(cls, "master", None) is None:
            section = getServiceSection("Configuration/Server")
            path = gConfig.getValue(f"{section}/MasterCFG", "")
            if not path:
                instance = gConfig.getValue("/LocalInstallation/InstancePath", "")
                if not instance:
                    raise ConfigurationError(f"set {section}/MasterCFG to the master configuration file")
                path = str(Path(instance) / "etc" / "cs" / "Master.cfg")
            cls.master = MasterConfiguration(path, gConfig.getValue(f"{section}/HistoryDir", "") or None)
            gConfig.useAsMaster(cls.master.cfg)
            cls.log.info("Serving configuration version %s from %s", cls.master.version, path)
        return cls.master

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls.loadMaster()

    auth_getVersion = [AUTHENTICATED]

    def export_getVersion(self) -> str:
        """The current configuration version."""
        return self.master.version

    auth_getCompressedData = [AUTHENTICATED]

    def export_getCompressedData(self) -> str:
        """The whole configuration (base64 zlib CFG text)."""
        return self.master.compressedData

    auth_getCompressedDataIfNewer = [AUTHENTICATED]

    def export_getCompressedDataIfNewer(self, sClientVersion: str) -> dict:
        """{'newestVersion': v} plus 'data' when the client's version is older."""
        answer = {"newestVersion": self.master.version}
        if sClientVersion < self.master.version:
            answer["data"] = self.master.compressedData
        return answer

    auth_writeEnabled = [AUTHENTICATED]

    def export_writeEnabled(self) -> bool:
        """This server holds the master copy and accepts commits."""
        return True

    auth_commitNewData = [Properties.CSAdministrator]

    def export_commitNewData(self, sData: str) -> str:
        """Replace the configuration; the data must carry the version it was edited from."""
        author = self.credDict.get("username") or self.credDict.get("hostname") or self.credDict["DN"]
        version = self.master.commit(decompress(sData), author)
        gConfig.useAsMaster(self.master.cfg)
        self.log.info("Configuration version %s committed by %s", version, author)
        return version

    auth_getCommitHistory = [AUTHENTICATED]

    def export_getCommitHistory(self, limit: int = 100) -> list:
        """[[version, author], ...], newest first."""
        return self.master.history(min(max(limit, 0), 100) or 100)

    auth_getVersionContents = [Properties.CSAdministrator]

    def export_getVersionContents(self, versionList: list[str]) -> list[str]:
        """The compressed CFG of each version asked for."""
        return [compress(self.master.versionContents(version)) for version in versionList]

    auth_rollbackToVersion = [Properties.CSAdministrator]

    def export_rollbackToVersion(self, version: str) -> str:
        """Make an older version the current one (as a new commit)."""
        author = self.credDict.get("username") or self.credDict["DN"]
        newVersion = self.master.rollback(version, author)
        gConfig.useAsMaster(self.master.cfg)
        self.log.info("Configuration rolled back to %s as version %s by %s", version, newVersion, author)
        return newVersion
