"""What the data management commands share: LFNs from arguments and files, bulk answers, progress.

The ``dirac-dms-*`` commands and their COMDIRAC short forms report per-LFN results the same
way: successes on stdout, one ``ERROR: <lfn>: <reason>`` line per failure on stderr, and the
most serious exit code (3 not allowed, 4 not found, 1 other failure).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dirac.Core.Base.Script import EXIT_AUTH, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, Script, exitCodeFor
from dirac.Interfaces.Utilities.CommandTools import CommandFailed, UsageError, progressBar, say, worstExitCode


def lfnsFromArguments(values: Iterable[str]) -> list[str]:
    """LFNs given as arguments; an argument naming an existing local file is read, one LFN
    per line (first column), as DIRAC's commands do."""
    lfns: list[str] = []
    for value in values:
        if Path(value).is_file():
            lines = Path(value).read_text().splitlines()
            lfns += [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]
        else:
            lfns.append(value)
    if not lfns:
        raise UsageError("no LFN given")
    return list(dict.fromkeys(lfns))


def reasonExitCode(reason: str) -> int:
    """The exit code a per-LFN failure reason stands for."""
    lowered = reason.lower()
    if "permission denied" in lowered or "not allowed" in lowered:
        return EXIT_AUTH
    if "no such file" in lowered or "no replica" in lowered or "does not exist" in lowered:
        return EXIT_NOT_FOUND
    return EXIT_FAILED


def checked(result: dict[str, Any]) -> Any:
    """The value of an S_OK; CommandFailed (with the exit code of its errno) for an S_ERROR."""
    if not result["OK"]:
        raise CommandFailed(result["Message"], exitCodeFor(result))
    return result["Value"]


def reportBulk(script: Script, result: dict[str, Any], describe: Callable[[str, Any], str | None],
               verb: str = "failed") -> int:
    """Print a bulk answer (``describe(lfn, value)`` per success; --json: the whole answer); its exit code."""
    value = checked(result)
    if script.wantsJSON:
        script.output(value)
    else:
        for lfn, item in value["Successful"].items():
            line = describe(lfn, item)
            if line:
                say(line)
    for lfn, reason in value["Failed"].items():
        if not script.wantsJSON:
            say(f"ERROR: {lfn} {verb}: {reason}", error=True)
    return worstExitCode(reasonExitCode(str(reason)) for reason in value["Failed"].values()) or EXIT_OK


def progressCallback(script: Script, total: int, what: str) -> tuple[Any, Callable[[str, bool], None]]:
    """(a progress bar on stderr, the callback DataManager calls after each file)."""
    bar = progressBar(script, total, what, unit="file")

    def advance(_lfn: str, _ok: bool) -> None:
        bar.update(1)

    return bar, advance


def uploadAndRegister(script: Script, uploads: list[tuple[str, str, str, str | None]], overwrite: bool = False
                      ) -> dict[str, Any]:
    """putAndRegister each (lfn, local file, SE, GUID) with a progress bar; the merged bulk answer (an S_OK)."""
    dm = dataManager()
    successful: dict[str, Any] = {}
    failed: dict[str, Any] = {}
    bar, advance = progressCallback(script, len(uploads), "uploading")
    with bar:
        for lfn, local, se, guid in uploads:
            result = dm.putAndRegister(lfn, local, se, guid=guid, overwrite=overwrite)
            if not result["OK"]:
                failed[lfn] = result["Message"]
            else:
                successful.update(result["Value"]["Successful"])
                failed.update(result["Value"]["Failed"])
            advance(lfn, lfn in successful)
    return {"OK": True, "Value": {"Successful": successful, "Failed": failed}}


def dataManager() -> Any:
    from dirac.DataManagementSystem.Client.DataManager import DataManager

    return DataManager()


def fileCatalog() -> Any:
    from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient

    return FileCatalogClient()


def homeDirectory() -> str:
    """The caller's catalog home /<vo>/user/<initial>/<user>, from the identity the catalog sees."""
    who = checked(fileCatalog().rpc.whoami())
    user, vo = who.get("username"), who.get("VO")
    if not user or not vo:
        raise CommandFailed("these credentials belong to no DIRAC user of a VO", EXIT_AUTH)
    return f"/{vo}/user/{user[0]}/{user}"


