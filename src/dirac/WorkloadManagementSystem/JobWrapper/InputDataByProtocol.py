"""Input data by protocol: transport URLs (TURLs) of a job's InputData on the SEs of its site, and the files that
hand every input file (read in place or downloaded) to the payload.

``resolveByProtocol`` asks each SE of the site holding a replica (in the site's ``SE`` order) for a TURL in the
first protocol of the configured order that one of its read plug-ins serves (``StorageElement.getTransportURL``:
file, root, https, ...; never DIP, whose URLs need DIRAC's client), then checks that the SE has the file with
the catalog's size. ``writeInputDataFiles`` writes, in the working directory:

* ``pool_xml_catalog.xml``: DIRAC's POOL XML slice (GUID, LFN, TURL or local path, SE), for ROOT/Gaudi;
* ``input_data.json``: ``{"Files": [{LFN, URL, SE, Protocol, Path, GUID, Size, Checksum, Downloaded}]}``;
* ``input_data.txt``: one ``<LFN> <URL>`` line per file, in InputData order;

and gives their absolute paths to the payload as ``DIRAC_INPUT_DATA_CATALOG``, ``DIRAC_INPUT_DATA_JSON`` and
``DIRAC_INPUT_DATA_LIST``. See docs/jobwrapper.md, "Input data by protocol".
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

POOL_CATALOG = "pool_xml_catalog.xml"
JSON_LIST = "input_data.json"
TEXT_LIST = "input_data.txt"
#: the file type DIRAC's POOL XML slices give every replica
POOL_FILE_TYPE = "ROOT_All"
ENVIRONMENT = {"DIRAC_INPUT_DATA_CATALOG": POOL_CATALOG, "DIRAC_INPUT_DATA_JSON": JSON_LIST,
               "DIRAC_INPUT_DATA_LIST": TEXT_LIST}


@dataclass(frozen=True)
class InputFile:
    """One InputData file as the payload sees it: a TURL on ``SE``, or the local copy the wrapper downloaded."""

    LFN: str
    #: the TURL, or the absolute path of the downloaded copy
    URL: str
    SE: str
    #: the TURL's scheme (file, root, https, ...), "local" for a downloaded copy
    Protocol: str
    GUID: str = ""
    Size: int = 0
    Checksum: str = ""
    Downloaded: bool = False

    @property
    def Path(self) -> str:  # noqa: N802 - a key of input_data.json
        """Where the file can be opened as a local file ('' when only its URL reads it)."""
        if self.Downloaded:
            return self.URL
        return unquote(self.URL[len("file://"):]) if self.URL.startswith("file://") else ""


def resolveByProtocol(lfns: Sequence[str], replicas: Mapping[str, Mapping[str, str]],
                      metadata: Mapping[str, Mapping[str, Any]], localSEs: Sequence[str], protocols: Sequence[str],
                      storageElement: Callable[[str], Any]) -> tuple[dict[str, InputFile], dict[str, str]]:
    """({lfn: InputFile} with a TURL on an SE of ``localSEs``, {lfn: why none}) for ``lfns``.

    ``replicas`` and ``metadata`` are the catalog's; ``storageElement(name)`` gives a StorageElement."""
    resolved: dict[str, InputFile] = {}
    problems: dict[str, list[str]] = {lfn: [] for lfn in lfns}
    for se in localSEs:
        wanted = [lfn for lfn in lfns if lfn not in resolved and se in replicas.get(lfn, {})]
        if not wanted:
            continue
        storage = storageElement(se)
        turls = storage.getTransportURL(wanted, protocols)
        if not turls["OK"]:
            for lfn in wanted:
                problems[lfn].append(turls["Message"])
            continue
        for lfn, why in turls["Value"]["Failed"].items():
            problems[lfn].append(_onSE(se, why))
        # the TURL is only worth giving when the SE has the file, whole: one stat per file, no read
        sizes = storage.getFileSize(list(turls["Value"]["Successful"]))
        for lfn, url in turls["Value"]["Successful"].items():
            entry = metadata.get(lfn, {})
            expected = int(entry.get("Size") or 0)
            why = sizes["Message"] if not sizes["OK"] else sizes["Value"]["Failed"].get(lfn)
            if why is None and expected and sizes["Value"]["Successful"].get(lfn) != expected:
                why = f"{se} has {sizes['Value']['Successful'].get(lfn)} bytes of it, the catalog {expected}"
            if why is not None:
                problems[lfn].append(_onSE(se, why))
                continue
            resolved[lfn] = InputFile(lfn, url, se, url.split(":", 1)[0], str(entry.get("GUID") or ""), expected,
                                      str(entry.get("Checksum") or ""))
    failed = {}
    for lfn in lfns:
        if lfn in resolved:
            continue
        failed[lfn] = "; ".join(problems[lfn]) or (
            f"no replica on the site's SEs ({', '.join(localSEs) or 'none'}); replicas on "
            f"{', '.join(sorted(replicas.get(lfn, {}))) or 'none'}")
    return resolved, failed


def _onSE(se: str, why: str) -> str:
    """A replica's problem, naming its SE once (the SEs' own messages usually do)."""
    return why if se in why else f"{se}: {why}"


def poolXMLCatalog(files: Sequence[InputFile]) -> str:
    """DIRAC's POOL XML catalog slice: one ``File`` (ID = GUID) per input file with its URL and SE."""
    root = ET.Element("POOLFILECATALOG")
    for item in files:
        entry = ET.SubElement(root, "File", ID=item.GUID)
        ET.SubElement(ET.SubElement(entry, "physical"), "pfn", filetype=POOL_FILE_TYPE, name=item.URL, se=item.SE)
        ET.SubElement(ET.SubElement(entry, "logical"), "lfn", name=item.LFN)
    ET.indent(root, "  ")
    return ('<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n'
            '<!DOCTYPE POOLFILECATALOG SYSTEM "InMemory">\n' + ET.tostring(root, encoding="unicode") + "\n")


def writeInputDataFiles(workDir: Path, files: Sequence[InputFile]) -> dict[str, str]:
    """Write the POOL XML catalog and the JSON and text lists of ``files`` into ``workDir``; the payload's
    environment variables naming them."""
    (workDir / POOL_CATALOG).write_text(poolXMLCatalog(files))
    listing = [{**asdict(item), "Path": item.Path} for item in files]
    (workDir / JSON_LIST).write_text(json.dumps({"Files": listing}, indent=1) + "\n")
    (workDir / TEXT_LIST).write_text("".join(f"{item.LFN} {item.URL}\n" for item in files))
    return {name: str(workDir / file) for name, file in ENVIRONMENT.items()}
