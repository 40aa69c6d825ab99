#!/usr/bin/env python3
"""STAND-IN for the HTCondor client tools (HTCondor cannot run on the test machines): NOT HTCondor.

Installed under the names condor_submit, condor_q, condor_history, condor_rm and
condor_transfer_data (symbolic links to this file in a directory put first on PATH, see
``install``), it records every call (arguments and the ``_condor_*`` environment) in
``$HTCONDOR_STANDIN_DIR/calls.jsonl`` and answers in the formats of the real tools:

* ``condor_submit -terse FILE``: reads ``queue stamp in (...)`` and ``initialdir``; prints
  ``<cluster>.0 - <cluster>.<n-1>``;
* ``condor_q``/``condor_history IDS -attributes A,B -json``: a JSON array of ClassAds of the jobs
  (condor_q: Idle, Running, Held, Transferring; condor_history: Removed, Completed), nothing
  when none matches;
* ``condor_rm IDS``: ``Job <id> marked for removal``; ``condor_transfer_data ID``: writes
  ``<id>.out``/``.err`` into the job's initialdir.

Tests move jobs along by editing ``jobs.json`` (``setJob``). ``HTCONDOR_STANDIN_FAIL=<tool>:<message>``
makes that tool fail with the message on stderr and exit code 1, as an unreachable or refusing CE does.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

TOOLS = ("condor_submit", "condor_q", "condor_history", "condor_rm", "condor_transfer_data")
IN_QUEUE = (1, 2, 5, 6, 7)


def state() -> Path:
    return Path(os.environ["HTCONDOR_STANDIN_DIR"])


def load() -> dict:
    path = state() / "jobs.json"
    return json.loads(path.read_text()) if path.exists() else {"next": 100, "jobs": {}}


def save(data: dict) -> None:
    (state() / "jobs.json").write_text(json.dumps(data, indent=1))


def setJob(directory: Path, condorID: str, **attributes: object) -> None:
    """Change a job's ClassAd attributes (JobStatus, ExitCode, HoldReason, ...) in the stand-in's state."""
    path = directory / "jobs.json"
    data = json.loads(path.read_text())
    data["jobs"][condorID].update(attributes)
    path.write_text(json.dumps(data, indent=1))


def install(binDirectory: Path) -> None:
    """Create the condor_* links to this file in ``binDirectory``."""
    binDirectory.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        link = binDirectory / tool
        if not link.exists():
            link.symlink_to(Path(__file__).resolve())
    Path(__file__).chmod(0o755)


def ids(arguments: list[str]) -> list[str]:
    return [argument for argument in arguments if re.match(r"^\d+(\.\d+)?$", argument)]


def main() -> int:
    tool, arguments = os.path.basename(sys.argv[0]), sys.argv[1:]
    with open(state() / "calls.jsonl", "a") as calls:
        calls.write(json.dumps({"tool": tool, "arguments": arguments,
                                "environment": {k: v for k, v in os.environ.items() if k.lower().startswith("_condor_")},
                                "files": {k: Path(v).read_text() for k, v in os.environ.items()
                                          if k.upper() in ("_CONDOR_SCITOKENS_FILE", "_CONDOR_AUTH_SSL_CLIENT_CERTFILE")
                                          and Path(v).exists()}}) + "\n")
    failing, _, message = os.environ.get("HTCONDOR_STANDIN_FAIL", "").partition(":")
    if failing == tool:
        sys.stderr.write(message + "\n")
        return 1
    data = load()
    if tool == "condor_submit":
        text = Path(arguments[-1]).read_text()
        stamps = re.search(r"^queue stamp in \((.*)\)$", text, re.M).group(1).split(", ")
        initialdir = re.search(r"^initialdir = (.*)$", text, re.M).group(1)
        cluster = data["next"]
        data["next"] += 1
        for proc, stamp in enumerate(stamps):
            data["jobs"][f"{cluster}.{proc}"] = {"ClusterId": cluster, "ProcId": proc, "JobStatus": 1,
                                                 "Stamp": stamp, "Iwd": initialdir}
        save(data)
        print(f"{cluster}.0 - {cluster}.{len(stamps) - 1}")
    elif tool in ("condor_q", "condor_history"):
        wanted = ids(arguments)
        attributes = arguments[arguments.index("-attributes") + 1].split(",") if "-attributes" in arguments else None
        rows = []
        for condorID, ad in data["jobs"].items():
            if wanted and condorID not in wanted and condorID.split(".")[0] not in wanted:
                continue
            if (ad["JobStatus"] in IN_QUEUE) != (tool == "condor_q"):
                continue
            rows.append({k: v for k, v in sorted(ad.items()) if attributes is None or k in attributes})
        if rows:
            print(json.dumps(rows, indent=2))
    elif tool == "condor_rm":
        for condorID in ids(arguments):
            if condorID in data["jobs"]:
                data["jobs"][condorID]["JobStatus"] = 3
                print(f"Job {condorID} marked for removal")
        save(data)
    elif tool == "condor_transfer_data":
        for condorID in ids(arguments):
            ad = data["jobs"][condorID]
            Path(ad["Iwd"], f"{condorID}.out").write_text(ad.get("Out", ""))
            Path(ad["Iwd"], f"{condorID}.err").write_text(ad.get("Err", ""))
        print("Fetching data files...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
