"""Job descriptions from a command line, as COMDIRAC's ``dsub`` builds them.

``dsub [switches] COMMAND [ARGS...]`` starts from a JDL (``--JDL``, or one that only brings back
std.out and std.err), sets the attributes the switches name, then the executable:

* an absolute path (``/bin/echo``) runs as it is on the worker node;
* a local file (``run.sh``, ``bin/run.sh``) is shipped in the input sandbox and run from there;
* a bare name that is no local file (``echo``) is looked up on the worker node's PATH.

``--Parametric`` values make parametric jobs: plain values together make one parametric job
(``%s`` in the arguments takes each value), each ``start:stop[:step[:factor]]`` loop another.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from typing import Any

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd

from dirac.Interfaces.API.Job import insertAttributes
from dirac.Interfaces.Utilities.CommandTools import UsageError

DEFAULT_JDL = '[OutputSandbox = {"std.out", "std.err"}]'
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
LOOP = re.compile(rf"^({_NUMBER}):({_NUMBER})(?::({_NUMBER})(?::({_NUMBER}))?)?$")
MAX_LOOP_LENGTH = 100000

#: switch destination -> (JDL attribute, kind): "str", "int" or "list" (comma-separated on the command line)
SWITCH_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "JobName": ("JobName", "str"), "StdOutput": ("StdOutput", "str"), "StdError": ("StdError", "str"),
    "OutputSandbox": ("OutputSandbox", "list"), "InputSandbox": ("InputSandbox", "list"),
    "InputData": ("InputData", "list"), "OutputData": ("OutputData", "list"), "OutputPath": ("OutputPath", "str"),
    "OutputSE": ("OutputSE", "list"), "CPUTime": ("CPUTime", "int"), "Site": ("Site", "list"),
    "BannedSite": ("BannedSites", "list"), "Platform": ("Platform", "list"), "Priority": ("Priority", "int"),
    "JobGroup": ("JobGroup", "str"), "Tag": ("Tags", "list"), "NumberOfProcessors": ("NumberOfProcessors", "int"),
}
_HELP = {"JobName": "job name", "StdOutput": "file of the standard output (default std.out)",
         "StdError": "file of the standard error (default std.err)",
         "OutputSandbox": "files brought back with the job's output", "InputSandbox": "local files shipped with the job",
         "InputData": "LFNs the job reads", "OutputData": "files the job stores as grid data",
         "OutputPath": "LFN path prefix of the output data", "OutputSE": "storage elements of the output data",
         "CPUTime": "CPU time the job needs (seconds)", "Site": "sites where the job may run",
         "BannedSite": "sites where it may not", "Platform": "platforms it runs on", "Priority": "job priority",
         "JobGroup": "job group", "Tag": "tags the resource must offer (e.g. GPU)",
         "NumberOfProcessors": "processors the job uses"}
_SHORT = {"JobName": "-N", "StdOutput": "-O", "StdError": "-E"}


def addSwitches(parser: argparse.ArgumentParser) -> None:
    """dsub's switches: the job attributes, --JDL, --Parametric, --ForceExecUpload and the command."""
    parser.add_argument("-J", "--JDL", "--jdl", dest="jdl", metavar="FILE|JDL",
                        help="start from this JDL (a file, or the JDL text itself)")
    for name, (_, kind) in SWITCH_ATTRIBUTES.items():
        switches = [_SHORT[name]] if name in _SHORT else []
        parser.add_argument(*switches, f"--{name}", dest=name, type=int if kind == "int" else str,
                            metavar="A,B" if kind == "list" else "VALUE",
                            help=_HELP[name] + (" (comma-separated)" if kind == "list" else ""))
    parser.add_argument("-P", "--Parametric", action="append", default=[], metavar="VALUES",
                        help="parametric job: values 'a,b,c' (%%s in ARGS takes each) or loops "
                             "'start:stop[:step[:factor]]' (repeatable)")
    parser.add_argument("--ForceExecUpload", action="store_true",
                        help="ship the executable in the input sandbox even when its path is absolute")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARGS...]",
                        help="what the job runs; switches after COMMAND belong to it")


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.strip("{}").split(",") if item.strip()]


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def loopLength(start: float, stop: float, step: float, factor: float) -> int:
    """How many values ``value = value * factor + step`` takes from ``start`` before reaching ``stop``."""
    sign = 1 if start < stop else -1
    value, count = start, 0
    while (value - stop) * sign < 0:
        following = value * factor + step
        if (following - value) * sign <= 0:
            raise UsageError(f"the loop {start}:{stop}:{step}:{factor} never reaches {stop}")
        value, count = following, count + 1
        if count > MAX_LOOP_LENGTH:
            raise UsageError(f"the loop {start}:{stop}:{step}:{factor} has more than {MAX_LOOP_LENGTH} values")
    if not count:
        raise UsageError(f"the loop {start}:{stop} has no value: {stop} is where it stops, not its last value")
    return count


def parametricSets(values: list[str]) -> list[dict[str, Any]]:
    """One set of JDL attributes per parametric job: the plain values together, then one per loop."""
    plain: list[str] = []
    loops: list[dict[str, Any]] = []
    for value in (item for text in values for item in _list(text)):
        match = LOOP.match(value)
        if not match:
            plain.append(value)
            continue
        start, stop = _number(match[1]), _number(match[2])
        step = _number(match[3]) if match[3] else 1
        factor = _number(match[4]) if match[4] else 1
        loops.append({"Parameters": loopLength(start, stop, step, factor), "ParameterStart": start,
                      "ParameterStep": step, "ParameterFactor": factor})
    return ([{"Parameters": plain}] if plain else []) + loops


def _baseJDL(jdl: str | None) -> ClassAd:
    text = DEFAULT_JDL
    if jdl:
        if os.path.isfile(jdl):
            try:
                with open(jdl) as source:
                    text = source.read()
            except OSError as exc:
                raise UsageError(f"cannot read the JDL file {jdl}: {exc.strerror}") from None
        else:
            text = jdl
    classAd = ClassAd(text if text.strip().startswith("[") else f"[{text}]")
    if not classAd.isOK():
        raise UsageError(f"the JDL {jdl} cannot be parsed")
    return classAd


def _ship(classAd: ClassAd, path: str) -> None:
    shipped = classAd.getListFromExpression("InputSandbox") if classAd.lookupAttribute("InputSandbox") else []
    if path not in shipped:
        classAd.insertAttributeVectorString("InputSandbox", [*shipped, path])


def _setExecutable(classAd: ClassAd, command: list[str], forceUpload: bool) -> None:
    if not command:
        if not classAd.lookupAttribute("Executable"):
            raise UsageError("no command given: dsub COMMAND [ARGS...], or --JDL with an Executable")
        return
    executable, arguments = command[0], command[1:]
    local = os.path.isfile(executable)
    if executable.startswith("/") and not forceUpload:
        classAd.insertAttributeString("Executable", executable)
    elif local:
        _ship(classAd, executable)
        classAd.insertAttributeString("Executable", "./" + os.path.basename(executable))
    elif "/" in executable or forceUpload:
        raise UsageError(f"executable file {executable} not found")
    else:  # a command on the worker node's PATH
        classAd.insertAttributeString("Executable", executable)
    if arguments:
        classAd.insertAttributeString("Arguments", shlex.join(arguments))
    if not classAd.lookupAttribute("JobName"):
        classAd.insertAttributeString("JobName", os.path.basename(executable))


def buildJDLs(args: argparse.Namespace) -> list[str]:
    """The JDLs a dsub command line describes: one, or one per parametric set."""
    classAd = _baseJDL(args.jdl)
    attributes: dict[str, Any] = {}
    for name, (attribute, kind) in SWITCH_ATTRIBUTES.items():
        value = getattr(args, name, None)
        if value is not None:
            attributes[attribute] = _list(value) if kind == "list" else value
    insertAttributes(classAd, attributes)
    _setExecutable(classAd, list(args.command or []), args.ForceExecUpload)
    sets = parametricSets(args.Parametric)
    if not sets:
        return [classAd.asJDL()]
    jdls = []
    for parameters in sets:
        job = ClassAd(classAd.asJDL())
        insertAttributes(job, parameters)
        jdls.append(job.asJDL())
    return jdls
