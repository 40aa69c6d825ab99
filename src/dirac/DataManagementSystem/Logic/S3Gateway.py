"""The S3Gateway's rules: which pre-signed S3 URLs a caller may get.

A caller asks for a URL per LFN (or s3:// URL of the SE) and S3 method; it gets one when the File
Catalog gives it the permission the method needs on that LFN (Read for get/head/list, Write for
put/delete and the multipart steps), exactly as if it read or registered the file:
the nearest existing catalog directory decides, and a user's home is created at its first write.
FileCatalogManagement and TrustedHost callers may have any URL. The URL is signed with the SE's
keys, which only the server holds (its local configuration), and lives ``expiration`` seconds at
most ``MaxExpiration``.
"""

from __future__ import annotations

from typing import Any

from dirac.Core.Security import Properties
from dirac.Core.Utilities.Exceptions import ConfigurationError, DiracError, InvalidArgument
from dirac.DataManagementSystem.Logic.CatalogPaths import Caller
from dirac.DataManagementSystem.Logic.CatalogSecurity import FileCatalogBase, asDict, bulk
from dirac.Resources.Storage.S3Storage import METHODS, S3Storage
from dirac.Resources.Storage.StorageElement import StorageElement


def s3PluginOf(storageName: str) -> S3Storage:
    """The S3 plug-in of an SE for which this server holds the keys."""
    se = StorageElement(storageName)
    if se.error:
        raise ConfigurationError(se.error)
    for plugin in se.plugins:
        if isinstance(plugin, S3Storage) and plugin.directAccess:
            return plugin
    raise ConfigurationError(f"{storageName} has no S3 plug-in with keys on this server "
                             "(Aws_access_key_id and Aws_secret_access_key in its local configuration)")


def presignedUrls(catalog: FileCatalogBase, credDict: dict[str, Any], plugin: S3Storage, method: str,
                  urls: str | list | dict, expiration: int, maxExpiration: int) -> dict[str, dict[str, Any]]:
    """{"Successful": {url: pre-signed URL}, "Failed": {url: reason}} for the URLs or LFNs ``urls``
    ({url: fields} for methods that take fields, such as put_object's Checksum and ContentMD5)."""
    if method not in METHODS:
        raise InvalidArgument(f"{method} is not an S3 method the gateway signs (one of {', '.join(METHODS)})")
    if not 0 < int(expiration) <= maxExpiration:
        raise InvalidArgument(f"expiration must be between 1 and {maxExpiration} seconds, not {expiration}")
    requested = asDict(urls)
    failed: dict[str, str] = {}
    lfns: dict[str, str] = {}
    for url in requested:
        try:
            lfns[url] = plugin.lfnOf(url)
        except DiracError as exc:
            failed[url] = exc.message
    properties = credDict.get("properties", [])
    if Properties.TrustedHost in properties or Properties.FileCatalogManagement in properties:
        allowed = set(lfns.values())
    else:
        good, refused = catalog.screen(Caller.fromCredentials(credDict), sorted(set(lfns.values())),
                                       METHODS[method][1], allowRoot=True)
        allowed = set(good)
        failed.update({url: refused[lfn] for url, lfn in lfns.items() if lfn in refused})
    successful: dict[str, str] = {}
    for url, lfn in lfns.items():
        if lfn not in allowed or url in failed:
            continue
        try:
            successful[url] = plugin.createPresignedUrl(method, lfn, requested[url] or {}, int(expiration))
        except DiracError as exc:
            failed[url] = exc.message
    return bulk(successful, failed)
