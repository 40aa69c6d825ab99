"""The runner of a pushed payload: runs one job on a node that cannot reach the server (standard library only).

The PushJobAgent ships this module's source, followed by ``BUNDLE = "<base64 tar.gz>"`` and a
call to ``main(BUNDLE)``, as one Python file (``PushBundle.buildBundle``). On the node it:

1. unpacks the bundle into the current directory: ``payload.json`` (what to run) and the files of
   the job's input sandbox, already downloaded by the agent;
2. runs the payload (``Executable`` + ``Arguments`` through ``/bin/sh``) with the node's environment
   minus every credential and server setting (``X509_*``, ``BEARER_TOKEN*``, ``DIRAC*``), its
   standard output and error in ``StdOutput`` and ``StdError``, stopped after ``WallClockLimit`` s;
3. packs the files matching the output sandbox patterns and prints one result block on its own
   standard output, between ``RESULT_BEGIN`` and ``RESULT_END``: a JSON object with ``ExitCode``,
   ``CPUTime`` (s of the payload and its children), ``WallClockTime``, ``HostName``,
   ``MissingFiles``, ``Error`` and ``Outputs`` (base64 of a tar.gz of the output sandbox files).

A whole-node bundle (``PushBundle.buildNodeBundle``) holds several such bundles (``BUNDLES``,
by job ID) and calls ``mainNode``: each job runs at once in its own directory ``job-<JobID>`` and
forked process, as above, and when all have ended their outputs are printed one after the other,
each after a line ``JOB_MARKER`` naming its job.

It needs Python 3.8 or later. It never opens a network connection: the agent reads the block from the batch job's output and
reports everything to the server. Its exit code is the payload's (capped at 255), or 2 when the
runner itself failed before running the payload (the block then says why).
"""

from __future__ import annotations

import base64
import glob
import io
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time

RESULT_BEGIN = "==== dirac-push-result begin ===="
RESULT_END = "==== dirac-push-result end ===="
PAYLOAD_FILE = "payload.json"
JOB_MARKER = "==== dirac-push-job {} ===="
RUNNER_OUTPUT = "runner.out"
#: environment variables that would point the payload at credentials or at the server
_PRIVATE_PREFIXES = ("X509_", "BEARER_TOKEN", "DIRAC")
EXIT_RUNNER_FAILED = 2


def _safeMembers(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The members of the bundle, refused when one would land outside the directory or is not a plain file/dir."""
    members = []
    for member in tar.getmembers():
        name = os.path.normpath(member.name)
        if name.startswith(("/", "..")) or not (member.isfile() or member.isdir()):
            raise ValueError(f"bundle member {member.name!r} is not allowed")
        members.append(member)
    return members


def unpackBundle(bundle: str, directory: str) -> dict:
    """Unpack the base64 tar.gz ``bundle`` into ``directory``; the payload description."""
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(bundle)), mode="r:gz") as tar:
        tar.extractall(directory, members=_safeMembers(tar))
    with open(os.path.join(directory, PAYLOAD_FILE)) as handle:
        return json.load(handle)


def payloadEnvironment(payload: dict) -> dict:
    """The node's environment without credentials or server settings, plus the job's identity and variables."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith(_PRIVATE_PREFIXES)}
    environment.update({"JOBID": str(payload["JobID"]), "DIRACJOBID": str(payload["JobID"]),
                        "DIRACSITE": payload.get("Site", ""), "DIRAC_PROCESSORS": str(payload.get("Processors", 1))})
    environment.update(payload.get("Environment", {}))
    return environment


def payloadCommand(payload: dict, directory: str) -> str:
    """The shell command of the payload; a shipped executable is made executable."""
    executable = os.path.expandvars(payload["Executable"].strip())
    if "/" not in executable and not os.path.exists(os.path.join(directory, executable)):
        executable = shutil.which(executable) or executable
    path = os.path.join(directory, executable)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"executable {executable} not found")
    if not os.access(path, os.X_OK):
        os.chmod(path, os.stat(path).st_mode | 0o111)
    command = shlex.quote(path)
    return f"{command} {payload['Arguments']}" if payload.get("Arguments") else command


def runPayload(command: str, directory: str, payload: dict) -> tuple[int, float, float]:
    """Run the payload; (exit code, CPU seconds, wall-clock seconds). Past WallClockLimit it is killed (SIGTERM, SIGKILL)."""
    limit = float(payload.get("WallClockLimit") or 0) or None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with open(os.path.join(directory, payload["StdOutput"]), "ab") as out:
        same = payload["StdError"] == payload["StdOutput"]
        err = out if same else open(os.path.join(directory, payload["StdError"]), "ab")
        try:
            process = subprocess.Popen(command, shell=True, cwd=directory, env=payloadEnvironment(payload),
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        finally:
            if not same:
                err.close()
    try:
        returncode = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        print(f"the payload exceeded its wall-clock limit of {limit:.0f} s: killing it", flush=True)
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                returncode = process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return (128 - returncode if returncode < 0 else returncode), cpu, time.monotonic() - started


def packOutputs(payload: dict, directory: str) -> tuple[str, list[str], str]:
    """(base64 tar.gz of the output sandbox files, patterns without a match, error) for the result block."""
    patterns = list(dict.fromkeys(payload.get("OutputSandbox", []) + [payload["StdOutput"], payload["StdError"]]))
    root = os.path.realpath(directory)
    private = {os.path.join(root, PAYLOAD_FILE), os.path.realpath(sys.argv[0]) if sys.argv[0] else ""}
    found, missing = [], []
    for pattern in patterns:
        matches = [os.path.realpath(m) for m in sorted(glob.glob(os.path.join(glob.escape(root), pattern)))]
        matches = [m for m in matches if m.startswith(root + os.sep) and m not in private and os.path.exists(m)]
        if not matches and not glob.has_magic(pattern):
            missing.append(pattern)
        found += [m for m in matches if m not in found]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in found:
            tar.add(path, arcname=os.path.relpath(path, root))
    data = buffer.getvalue()
    limit = int(payload.get("OutputSandboxLimit") or 0)
    if limit and len(data) > limit:
        return "", missing, f"the output sandbox is {len(data)} bytes, over the limit of {limit}"
    return base64.b64encode(data).decode(), missing, ""


def printResult(result: dict) -> None:
    sys.stdout.write(f"\n{RESULT_BEGIN}\n{json.dumps(result)}\n{RESULT_END}\n")
    sys.stdout.flush()


def main(bundle: str) -> int:
    """Run the bundled payload in the current directory and print its result block; the exit code."""
    directory = os.getcwd()
    result: dict = {"HostName": socket.gethostname(), "ExitCode": None, "CPUTime": 0.0, "WallClockTime": 0.0,
                    "MissingFiles": [], "Error": "", "Outputs": ""}
    try:
        payload = unpackBundle(bundle, directory)
        command = payloadCommand(payload, directory)
    except (OSError, ValueError, KeyError, tarfile.TarError) as exc:
        result["Error"] = f"{type(exc).__name__}: {exc}"
        printResult(result)
        return EXIT_RUNNER_FAILED
    print(f"job {payload['JobID']}: running {command} in {directory}", flush=True)
    try:
        result["ExitCode"], result["CPUTime"], result["WallClockTime"] = runPayload(command, directory, payload)
    except OSError as exc:
        result["Error"] = f"cannot start the payload: {exc}"
    print(f"job {payload['JobID']}: payload ended with exit code {result['ExitCode']}", flush=True)
    try:
        result["Outputs"], result["MissingFiles"], error = packOutputs(payload, directory)
        result["Error"] = result["Error"] or error
    except (OSError, tarfile.TarError) as exc:
        result["Error"] = result["Error"] or f"cannot pack the output sandbox: {exc}"
    printResult(result)
    return EXIT_RUNNER_FAILED if result["ExitCode"] is None else min(int(result["ExitCode"]), 255)


def _runForked(bundle: str, directory: str) -> int:
    """Fork a process running ``bundle`` in ``directory``, its output in ``RUNNER_OUTPUT`` there; its pid."""
    os.makedirs(directory, exist_ok=True)
    output = os.open(os.path.join(directory, RUNNER_OUTPUT), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sys.stdout.flush()
    pid = os.fork()
    if pid:
        os.close(output)
        return pid
    code = EXIT_RUNNER_FAILED
    try:
        os.chdir(directory)
        os.dup2(output, 1)
        os.dup2(output, 2)
        code = main(bundle)
    finally:
        sys.stdout.flush()
        os._exit(code)


def mainNode(bundles: dict) -> int:
    """Run the bundled jobs side by side on this node; print each one's output after its marker; 0."""
    base = os.getcwd()
    children = {}
    for jobID, bundle in bundles.items():
        children[_runForked(bundle, os.path.join(base, f"job-{jobID}"))] = jobID
    print(f"running {len(children)} job(s) side by side: {', '.join(map(str, bundles))}", flush=True)
    while children:
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            break
        jobID = children.pop(pid, None)
        if jobID is not None:
            print(f"job {jobID} ended", flush=True)
    for jobID in bundles:
        print(JOB_MARKER.format(jobID), flush=True)
        try:
            with open(os.path.join(base, f"job-{jobID}", RUNNER_OUTPUT)) as handle:
                sys.stdout.write(handle.read())
        except OSError as exc:
            print(f"no output of job {jobID}: {exc}")
        sys.stdout.flush()
    return 0
