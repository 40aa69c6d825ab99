"""The payload bundle the PushJobAgent sends to a CE, and the result it reads back.

A bundle is one Python file: the source of ``PushRunner`` (standard library only), then
``BUNDLE``, a base64 tar.gz of ``payload.json`` and the job's input sandbox files; a whole-node
bundle has ``BUNDLES``, several of those by job ID, run side by side. It holds no
credential, no server URL and no configuration: the node runs it with ``python3`` and never calls
the server. Its result comes back inside the batch job's standard output (``parseResult``).
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from dirac.WorkloadManagementSystem.JobWrapper.JobArguments import PayloadDescription
from dirac.WorkloadManagementSystem.Logic import PushRunner
from dirac.WorkloadManagementSystem.Logic.PushRunner import JOB_MARKER, PAYLOAD_FILE, RESULT_BEGIN, RESULT_END

_HEADER = '#!/usr/bin/env python3\n# dirac-seed payload of job {jobID}, pushed by the PushJobAgent: no credential inside\n'
_FOOTER = '\nBUNDLE = "{bundle}"\n\nif __name__ == "__main__":\n    sys.exit(main(BUNDLE))\n'
_NODE_HEADER = '#!/usr/bin/env python3\n# dirac-seed payloads of jobs {jobIDs}, pushed by the PushJobAgent: no credential inside\n'
_NODE_FOOTER = '\nBUNDLES = {bundles}\n\nif __name__ == "__main__":\n    sys.exit(mainNode(BUNDLES))\n'


class BundleError(Exception):
    """The result of a pushed payload is missing or cannot be read."""


def payloadDescription(jobID: int, description: PayloadDescription, site: str, wallClockLimit: float,
                       outputSandboxLimit: int) -> dict[str, Any]:
    """The ``payload.json`` of a job: what the runner needs and nothing else."""
    return {"JobID": jobID, "Executable": description.executable, "Arguments": description.arguments,
            "StdOutput": description.stdOutput, "StdError": description.stdError,
            "OutputSandbox": description.outputSandbox, "Environment": description.executionEnvironment,
            "Processors": description.numberOfProcessors, "Site": site, "WallClockLimit": wallClockLimit,
            "OutputSandboxLimit": outputSandboxLimit}


def _pack(payload: dict[str, Any], inputDirectory: Path | None) -> str:
    """Base64 of the tar.gz of ``payload.json`` and the files of ``inputDirectory``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = json.dumps(payload, indent=1).encode()
        info = tarfile.TarInfo(PAYLOAD_FILE)
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
        if inputDirectory is not None and inputDirectory.is_dir():
            for path in sorted(inputDirectory.iterdir()):
                tar.add(path, arcname=path.name)
    return base64.b64encode(buffer.getvalue()).decode()


def buildBundle(payload: dict[str, Any], inputDirectory: Path | None = None) -> str:
    """Python source of the bundle running ``payload`` with the files of ``inputDirectory`` next to it."""
    return (_HEADER.format(jobID=payload["JobID"]) + Path(PushRunner.__file__).read_text()
            + _FOOTER.format(bundle=_pack(payload, inputDirectory)))


def buildNodeBundle(jobs: list[tuple[dict[str, Any], Path | None]]) -> str:
    """Python source of a whole-node bundle running the (payload, input directory) ``jobs`` side by side."""
    bundles = {str(payload["JobID"]): _pack(payload, inputs) for payload, inputs in jobs}
    return (_NODE_HEADER.format(jobIDs=", ".join(bundles)) + Path(PushRunner.__file__).read_text()
            + _NODE_FOOTER.format(bundles=json.dumps(bundles, indent=1)))


def jobOutput(stdout: str, jobID: int) -> str:
    """The part of a batch job's output that is ``jobID``'s: after its marker in a whole-node bundle's, else all."""
    marker = JOB_MARKER.format(jobID)
    start = stdout.find(marker)
    if start < 0:
        return stdout
    end = stdout.find(JOB_MARKER.split("{}")[0], start + len(marker))  # the next job's marker
    return stdout[start + len(marker):end if end >= 0 else len(stdout)]


def parseResult(stdout: str) -> dict[str, Any]:
    """The result block the runner printed in ``stdout`` (BundleError when there is none or it is damaged)."""
    start = stdout.rfind(RESULT_BEGIN)
    end = stdout.find(RESULT_END, start + 1) if start >= 0 else -1
    if start < 0 or end < 0:
        raise BundleError("the batch job's output has no result of the payload")
    try:
        result = json.loads(stdout[start + len(RESULT_BEGIN):end])
    except ValueError as exc:
        raise BundleError(f"the payload's result cannot be read: {exc}") from exc
    if not isinstance(result, dict):
        raise BundleError("the payload's result is not a JSON object")
    return result


def unpackOutputs(result: dict[str, Any], directory: Path) -> list[Path]:
    """Unpack the output sandbox files of ``result`` into ``directory``; their paths (top level entries)."""
    if not result.get("Outputs"):
        return []
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(result["Outputs"])), mode="r:gz") as tar:
            names = tar.getnames()
            tar.extractall(directory, filter="data")  # refuses absolute paths, .. and devices
    except (tarfile.TarError, ValueError) as exc:
        raise BundleError(f"the payload's output sandbox cannot be unpacked: {exc}") from exc
    tops = dict.fromkeys(name.split("/")[0] for name in names)
    return [directory / name for name in tops]
