"""COMDIRAC-style data commands: a File Catalog "shell" made of short commands with a current directory.

    dpwd                      the current catalog directory (your home until dcd)
    dcd [DIR]                 change it (no argument: home)
    dls [-l] [PATH...]        list directories (files: name, or with -l size, date, owner, mode)
    dmkdir PATH...            create directories
    dput LOCAL... [-D DIR] [-S SE]   upload and register (into DIR, default the current one)
    dget LFN... [-D LOCALDIR] download
    drm LFN...                remove files (every replica and the catalog entry)
    drepl LFN... -S SE        replicate to another Storage Element
    dfind [PATH] Field<op>value...   files below PATH whose metadata match
    dsize PATH...             size of files and directories (recursive)
    dmeta [PATH] [Field=value...]    metadata of PATH, or set it

Relative paths are resolved against the current directory, kept in ``~/.dirac/dcommands-cwd``
(``DCOMMANDS_CWD_FILE`` elsewhere). Each command has ``--help`` and ``--json``; exit codes
as the dirac-dms-* commands (3 not allowed, 4 not found, 1 other failure).
"""

from __future__ import annotations

import os
import posixpath
import sys
from pathlib import Path
from typing import Any

from dirac.Core.Base.Script import EXIT_OK, Script
from dirac.Interfaces.Utilities.CommandTools import CommandFailed, UsageError, formatTable, plain, runCommand
from dirac.Interfaces.Utilities.DMSCommands import (
    checked,
    dataManager,
    fileCatalog,
    homeDirectory,
    progressCallback,
    reasonExitCode,
    reportBulk,
    uploadAndRegister,
)

DEFAULT_SE_OPTION = "/Resources/StorageElementGroups/SE-USER"


def _cwdFile() -> Path:
    return Path(os.environ.get("DCOMMANDS_CWD_FILE") or Path.home() / ".dirac" / "dcommands-cwd")


def currentDirectory() -> str:
    """The current catalog directory: the one dcd chose, else the caller's home."""
    try:
        saved = _cwdFile().read_text().strip()
    except OSError:
        saved = ""
    return saved or homeDirectory()


def resolve(path: str, cwd: str | None = None) -> str:
    """``path`` made absolute against the current directory, '.' and '..' folded."""
    if not path.startswith("/"):
        path = posixpath.join(cwd or currentDirectory(), path)
    return posixpath.normpath(path).replace("//", "/")


def _one(value: dict[str, Any], path: str) -> Any:
    """The answer for ``path`` in a bulk value; CommandFailed with its reason otherwise."""
    if path in value["Failed"]:
        reason = str(value["Failed"][path])
        raise CommandFailed(f"{path}: {reason}", reasonExitCode(reason))
    return value["Successful"][path]


def _defaultSE() -> str:
    from dirac.Core.Config import gConfig
    from dirac.Core.Config.ConfigurationClient import toList

    ses = toList(gConfig.getValue(DEFAULT_SE_OPTION, ""))
    if not ses:
        raise UsageError(f"no Storage Element given (-S) and none in {DEFAULT_SE_OPTION}")
    return ses[0]


# -- the commands ---------------------------------------------------------------------------------------------------
def dpwd(argv: list[str] | None = None) -> int:
    script = Script("Print the current File Catalog directory.", jsonOutput=True)

    def body(_args) -> int:  # noqa: ANN001
        script.output({"cwd": currentDirectory()}, lambda d: d["cwd"])
        return EXIT_OK

    return runCommand(script, body, argv)


def dcd(argv: list[str] | None = None) -> int:
    script = Script("Change the current File Catalog directory (no argument: your home).", jsonOutput=True)
    script.parser.add_argument("directory", nargs="?", default="")

    def body(args) -> int:  # noqa: ANN001
        target = resolve(args.directory) if args.directory else homeDirectory()
        if not _one(checked(fileCatalog().isDirectory(target)), target):
            raise CommandFailed(f"{target}: not a directory", 4)
        _cwdFile().parent.mkdir(parents=True, exist_ok=True)
        _cwdFile().write_text(target + "\n")
        script.output({"cwd": target}, lambda d: d["cwd"])
        return EXIT_OK

    return runCommand(script, body, argv)


def dls(argv: list[str] | None = None) -> int:
    script = Script("List File Catalog directories.", jsonOutput=True)
    script.parser.add_argument("-l", "--long", action="store_true", help="size, date, owner and mode of each entry")
    script.parser.add_argument("paths", nargs="*")

    def body(args) -> int:  # noqa: ANN001
        paths = [resolve(p) for p in args.paths] or [currentDirectory()]
        listing = checked(fileCatalog().listDirectory(paths, args.long))
        if script.wantsJSON:
            script.output(plain(listing))
        for path in paths:
            entries = _one(listing, path)
            if script.wantsJSON:
                continue
            if len(paths) > 1:
                print(f"{path}:")
            rows = []
            for kind in ("SubDirs", "Files"):
                for lfn, info in sorted(entries.get(kind, {}).items()):
                    name = posixpath.basename(lfn) + ("/" if kind == "SubDirs" else "")
                    meta = (info or {}).get("MetaData", info or {}) if args.long else {}
                    rows.append([oct(meta.get("Mode", 0))[2:] if meta.get("Mode") else "", meta.get("Owner", ""),
                                 meta.get("OwnerGroup", ""), meta.get("Size", ""),
                                 str(meta.get("ModificationDate") or meta.get("CreationDate") or "")[:19], name]
                                if args.long else [name])
            if rows and args.long:
                print(formatTable(["Mode", "Owner", "Group", "Size", "Date", "Name"], rows))
            elif rows:
                print("\n".join(row[0] for row in rows))
        return EXIT_OK

    return runCommand(script, body, argv)


def dmkdir(argv: list[str] | None = None) -> int:
    script = Script("Create File Catalog directories (with their parents).", jsonOutput=True)
    script.parser.add_argument("paths", nargs="+")

    def body(args) -> int:  # noqa: ANN001
        return reportBulk(script, fileCatalog().createDirectory([resolve(p) for p in args.paths]),
                          lambda path, _v: f"Created {path}", verb="not created")

    return runCommand(script, body, argv)


def dput(argv: list[str] | None = None) -> int:
    script = Script("Upload local files to a Storage Element and register them.", jsonOutput=True)
    script.parser.add_argument("files", nargs="+", metavar="LOCALFILE")
    script.parser.add_argument("-D", "--destination", default="", help="catalog directory (default: the current one)")
    script.parser.add_argument("-S", "--se", default="", help=f"Storage Element (default: first of {DEFAULT_SE_OPTION})")

    def body(args) -> int:  # noqa: ANN001
        directory = resolve(args.destination) if args.destination else currentDirectory()
        se = args.se or _defaultSE()
        uploads = [(posixpath.join(directory, os.path.basename(local)), local, se, None) for local in args.files]
        return reportBulk(script, uploadAndRegister(script, uploads), lambda lfn, _v: f"{lfn} uploaded to {se}",
                          verb="not uploaded")

    return runCommand(script, body, argv)


def dget(argv: list[str] | None = None) -> int:
    script = Script("Download files of the File Catalog.", jsonOutput=True)
    script.parser.add_argument("lfns", nargs="+")
    script.parser.add_argument("-D", "--destination", default=".", help="local directory (default: here)")

    def body(args) -> int:  # noqa: ANN001
        Path(args.destination).mkdir(parents=True, exist_ok=True)
        lfns = [resolve(p) for p in args.lfns]
        bar, advance = progressCallback(script, len(lfns), "downloading")
        with bar:
            result = dataManager().getFile(lfns, args.destination, progress=advance)
        return reportBulk(script, result, lambda lfn, _v: f"{lfn} -> {Path(args.destination) / posixpath.basename(lfn)}",
                          verb="not downloaded")

    return runCommand(script, body, argv)


def drm(argv: list[str] | None = None) -> int:
    script = Script("Remove files: every replica and the catalog entry.", jsonOutput=True)
    script.parser.add_argument("lfns", nargs="+")

    def body(args) -> int:  # noqa: ANN001
        lfns = [resolve(p) for p in args.lfns]
        bar, advance = progressCallback(script, len(lfns), "removing")
        with bar:
            result = dataManager().removeFile(lfns, progress=advance)
        return reportBulk(script, result, lambda lfn, _v: f"Removed {lfn}", verb="not removed")

    return runCommand(script, body, argv)


def drepl(argv: list[str] | None = None) -> int:
    script = Script("Replicate files to another Storage Element.", jsonOutput=True)
    script.parser.add_argument("lfns", nargs="+")
    script.parser.add_argument("-S", "--se", required=True, help="destination Storage Element")

    def body(args) -> int:  # noqa: ANN001
        lfns = [resolve(p) for p in args.lfns]
        bar, advance = progressCallback(script, len(lfns), "replicating")
        with bar:
            result = dataManager().replicateAndRegister(lfns, args.se, progress=advance)
        return reportBulk(script, result, lambda lfn, _v: f"{lfn} replicated to {args.se}", verb="not replicated")

    return runCommand(script, body, argv)


def dfind(argv: list[str] | None = None) -> int:
    script = Script("Find files below a directory whose metadata match (e.g. dfind . Run>=5 Type=raw).",
                    jsonOutput=True)
    script.parser.add_argument("path", help="where to search ('.' for the current directory)")
    script.parser.add_argument("conditions", nargs="+", metavar="Field<op>value")

    def body(args) -> int:  # noqa: ANN001
        from dirac.DataManagementSystem.Logic.MetaQuery import mergeConditions

        try:
            query = mergeConditions(args.conditions)
        except Exception as exc:  # the parser's InvalidArgument
            raise UsageError(str(getattr(exc, "message", exc))) from None
        lfns = sorted(checked(fileCatalog().findFilesByMetadata(query, resolve(args.path))))
        script.output(lfns, lambda found: "\n".join(found) if found else "no file matches")
        return EXIT_OK

    return runCommand(script, body, argv)


def dsize(argv: list[str] | None = None) -> int:
    script = Script("Size of files and (recursively) directories of the File Catalog.", jsonOutput=True)
    script.parser.add_argument("paths", nargs="*")

    def body(args) -> int:  # noqa: ANN001
        paths = [resolve(p) for p in args.paths] or [currentDirectory()]
        catalog = fileCatalog()
        isFile = checked(catalog.isFile(paths))
        sizes: dict[str, dict[str, Any]] = {}
        for path in paths:
            if _one(isFile, path):
                sizes[path] = {"Files": 1, "Size": _one(checked(catalog.getFileSize(path)), path)}
            else:
                info = _one(checked(catalog.getDirectorySize(path)), path)
                sizes[path] = {"Files": info.get("LogicalFiles", 0), "Size": info.get("LogicalSize", 0)}
        script.output(sizes, lambda d: formatTable(["Path", "Files", "Size"],
                                                   [[p, v["Files"], v["Size"]] for p, v in d.items()]))
        return EXIT_OK

    return runCommand(script, body, argv)


def dmeta(argv: list[str] | None = None) -> int:
    script = Script("Show the metadata of a catalog path, or set it (dmeta PATH Field=value ...).", jsonOutput=True)
    script.parser.add_argument("path", nargs="?", default="")
    script.parser.add_argument("assignments", nargs="*", metavar="Field=value")

    def body(args) -> int:  # noqa: ANN001
        path = resolve(args.path) if args.path else currentDirectory()
        catalog = fileCatalog()
        if args.assignments:
            if any("=" not in item for item in args.assignments):
                raise UsageError("metadata to set are Field=value")
            values = dict(item.split("=", 1) for item in args.assignments)
            checked(catalog.setMetadata(path, values))
            script.output({path: values}, lambda _d: f"{path}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
            return EXIT_OK
        isFile = _one(checked(catalog.isFile(path)), path)
        meta = checked(catalog.getFileUserMetadata(path) if isFile else catalog.getDirectoryUserMetadata(path))
        script.output(plain(meta), lambda d: "\n".join(f"{k} = {v}" for k, v in sorted(d.items())) or "no metadata")
        return EXIT_OK

    return runCommand(script, body, argv)


if __name__ == "__main__":
    sys.exit(globals()[os.path.basename(sys.argv[0])]())
