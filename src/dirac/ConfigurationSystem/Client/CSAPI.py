"""CSAPI: read, change and commit the central configuration (admins, CSAdministrator).

    api = CSAPI()
    api.initialize()
    api.setOption("/Registry/Users/bob/DN", "/O=DIRAC-Seed/CN=bob")
    api.commit()        # S_OK(newVersion); refused if someone committed in between
"""

from __future__ import annotations

from typing import Any

from diraccfg import CFG

from dirac.ConfigurationSystem.Logic.MasterConfiguration import compress, decompress
from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Config.ConfigurationData import getSection, setOption, splitPath
from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType


class CSAPI:
    """An editable copy of the central configuration, committed in one go."""

    def __init__(self, serverURL: str | None = None, **clientOptions: Any):
        master = gConfig.getValue("/DIRAC/Configuration/MasterServer", "")
        servers = toList(gConfig.getValue("/DIRAC/Configuration/Servers", ""))
        self.url = serverURL or master or (servers[0] if servers else "Configuration/Server")
        self.rpc = RPCClient(self.url, **clientOptions)
        self.cfg: CFG | None = None
        self.changes: list[str] = []

    def initialize(self) -> DReturnType[str]:
        """Fetch the current configuration; S_OK(version)."""
        result = self.rpc.getCompressedData()
        if not result["OK"]:
            return result
        self.cfg = CFG().loadFromBuffer(decompress(result["Value"]))
        self.changes = []
        return S_OK(self.cfg.getOption("/DIRAC/Configuration/Version"))

    def _cfg(self) -> CFG:
        if self.cfg is None:
            raise RuntimeError("CSAPI.initialize() must be called first")
        return self.cfg

    def getOption(self, path: str, default: str | None = None) -> str | None:
        value = self._cfg().getOption(path, default)
        return value if not isinstance(value, CFG) else default

    def listSections(self, path: str) -> list[str]:
        """Names of the sections under ``path`` (none when it is missing)."""
        section = getSection(self._cfg(), path)
        return list(section.listSections()) if section is not None else []

    def setOption(self, path: str, value: Any) -> None:
        setOption(self._cfg(), path, str(value))
        self.changes.append(f"set {path} = {value}")

    def createSection(self, path: str) -> None:
        getSection(self._cfg(), path, create=True)
        self.changes.append(f"create section {path}")

    def delete(self, path: str) -> bool:
        """Remove an option or a whole section; False when nothing was there."""
        parent, name = splitPath(path)
        section = getSection(self._cfg(), parent)
        if section is None or not section.existsKey(name):
            return False
        section.deleteKey(name)
        self.changes.append(f"delete {path}")
        return True

    def commit(self) -> DReturnType[str]:
        """Send the changed configuration; S_OK(newVersion)."""
        if not self.changes:
            return S_ERROR("nothing to commit")
        result = self.rpc.commitNewData(compress(str(self._cfg())))
        if result["OK"]:
            self.changes = []
            refreshed = self.initialize()
            if not refreshed["OK"]:
                return refreshed
        return result

    def getCommitHistory(self, limit: int = 100) -> DReturnType[list]:
        return self.rpc.getCommitHistory(limit)

    def rollbackToVersion(self, version: str) -> DReturnType[str]:
        return self.rpc.rollbackToVersion(version)
