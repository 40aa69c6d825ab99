"""File Catalog browser: directories, files, replicas and metadata; downloads through the DataManager."""

from __future__ import annotations

import os
import posixpath
import tempfile
from pathlib import Path
from typing import Any

from dirac.Core.Config import gConfig
from dirac.DataManagementSystem.Client.DataManager import DataManager
from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient
from dirac.WebApp.Handlers.Base import PortalHandler, ServiceRefusal, unwrap
from dirac.WebApp.Handlers.Jobs import sendFile


def normalLFN(value: str) -> str:
    """An absolute, normalised catalog path ('/' for nothing)."""
    path = posixpath.normpath("/" + value.strip().lstrip("/")) if value.strip() else "/"
    return "/" + path.lstrip("/")


def bulkValue(result: dict[str, Any], lfn: str) -> Any:
    """The Successful value of ``lfn`` in a bulk answer; ServiceRefusal with its Failed reason."""
    value = unwrap(result)
    if lfn in value.get("Failed", {}):
        raise ServiceRefusal(f"{lfn}: {value['Failed'][lfn]}")
    return value.get("Successful", {}).get(lfn)


def delegatingSE(replicas: dict[str, Any]) -> str:
    """A replica's Storage Element that acts for the user when the portal calls with extraCredentials: one
    served by the StorageElement service (DIP plug-in only). Other plug-ins (WebDAV, XRootD) would present
    the portal's host certificate instead of the user's identity: refused rather than used."""
    for se in sorted(replicas):
        plugins = gConfig.getSections(f"/Resources/StorageElements/{se}")
        if plugins["OK"] and plugins["Value"] and set(plugins["Value"]) <= {"DIP"}:
            return se
    raise ServiceRefusal("for a certificate sign-in the portal downloads only from Storage Elements of the "
                         f"StorageElement service; this file has replicas on {', '.join(sorted(replicas)) or 'none'}"
                         " (sign in with your identity provider, or use dirac-dms-get-file)")


class FileCatalogHandler(PortalHandler):
    """``?path=``: a directory's entries and metadata, or a file's metadata and replicas."""

    async def get(self) -> None:
        path = normalLFN(self.get_query_argument("path", "/"))

        def load(options: dict[str, Any]) -> dict[str, Any]:
            catalog = FileCatalogClient(**options)
            if bulkValue(catalog.isFile(path), path):
                user = catalog.getFileUserMetadata(path)
                return {"kind": "file", "metadata": bulkValue(catalog.getFileMetadata(path), path) or {},
                        "replicas": bulkValue(catalog.getReplicas(path), path) or {},
                        "userMetadata": user.get("Value") or {}}
            listing = bulkValue(catalog.listDirectory(path, True), path) or {}
            user = catalog.getDirectoryUserMetadata(path)
            return {"kind": "directory", "subdirs": sorted(listing.get("SubDirs", {})),
                    "files": sorted(listing.get("Files", {}).items()), "userMetadata": user.get("Value") or {}}

        try:
            data = await self.act(load)
        except ServiceRefusal as exc:
            self.set_status(404 if "no such" in exc.message.lower() else 403)
            await self.show("error.html", title=path, message=exc.message)
            return
        crumbs, walked = [("/", "/")], ""
        for part in [p for p in path.split("/") if p]:
            walked += "/" + part
            crumbs.append((part, walked))
        await self.show("files.html", path=path, crumbs=crumbs, basename=posixpath.basename, **data)


class FileDownloadHandler(PortalHandler):
    """``?lfn=``: the file fetched by the DataManager (checked against the catalog's Adler32), then sent."""

    async def get(self) -> None:
        lfn = normalLFN(self.get_query_argument("lfn", ""))
        with tempfile.TemporaryDirectory(prefix="dirac-webapp-") as tmp:
            def fetch(options: dict[str, Any]) -> Path:
                manager = DataManager(**options)
                sourceSE = None
                if options.get("extraCredentials"):
                    sourceSE = delegatingSE(bulkValue(manager.getReplicas(lfn), lfn) or {})
                return Path(bulkValue(manager.getFile(lfn, tmp, sourceSE=sourceSE), lfn))

            try:
                local = await self.act(fetch)
            except ServiceRefusal as exc:
                self.set_status(404)
                await self.show("error.html", title=f"Download {lfn}", message=exc.message)
                return
            name = os.path.basename(lfn).replace('"', "")
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            await sendFile(self, local)
