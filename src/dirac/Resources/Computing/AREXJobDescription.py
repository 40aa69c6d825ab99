"""The job descriptions the AREX CE sends to an ARC CE: xRSL (NorduGrid) or ADL (EMI-ES ActivityDescription).

Both describe the same pilot: the executable is pushed by the client into the session directory
(xRSL ``(inputFiles=("<name>" ""))``, ADL ``InputFile`` without ``Source``), standard output and
error go to ``pilot.out``/``pilot.err`` in the session directory and are kept there for us to fetch
(xRSL ``outputFiles`` with an empty destination, ADL ``OutputFile`` without ``Target``), and the
environment holds ``DIRAC_PILOT_STAMP``. When a token goes with the pilot, ``pilot.token`` is pushed
too and a small wrapper (``dirac-arex-pilot.sh``) is the job's executable: it sets
``BEARER_TOKEN_FILE`` to the token's absolute path and runs the pilot. The job's proxy is the delegation named in xRSL's
``delegationid`` or ADL's ``DataStaging/nordugrid-adl:DelegationID`` (ARC's extension; without
it, A-REX 6.17 gave the job the certificate the client connected with, not the delegated proxy).
A-REX takes several xRSL jobs in one request (``+(&...)(&...)``); ADL documents go one per request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from dirac.Core.Utilities.Exceptions import InvalidArgument

STDOUT = "pilot.out"
STDERR = "pilot.err"
TOKEN_FILE = "pilot.token"
WRAPPER = "dirac-arex-pilot.sh"
ADL_NAMESPACE = "http://www.eu-emi.eu/es/2010/12/adl"
NORDUGRID_ADL_NAMESPACE = "http://www.nordugrid.org/es/2011/12/nordugrid-adl"
LANGUAGES = ("xRSL", "ADL")
_XRSL_SAFE = re.compile(r'^[^"\n]*$')


@dataclass
class PilotDescription:
    """What one pilot job needs from the ARC CE."""

    executable: str  # the file name in the session directory
    stamp: str
    queue: str = ""
    processors: int = 1
    memoryMB: int = 0
    cpuTimeMinutes: int = 0
    delegationID: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    #: further files the client pushes into the session directory, and which of them are executable
    inputs: list[str] = field(default_factory=list)
    executables: list[str] = field(default_factory=list)

    def variables(self) -> dict[str, str]:
        return {"DIRAC_PILOT_STAMP": self.stamp, **self.environment}

    def pushed(self) -> list[str]:
        return [self.executable, *self.inputs]


def tokenWrapper(executable: str) -> str:
    """The script run instead of the pilot when a token goes with it: ``BEARER_TOKEN_FILE`` must be an
    absolute path (the pilot's job agent runs jobs elsewhere), and A-REX exports variables unexpanded."""
    return (f'#!/bin/sh\nBEARER_TOKEN_FILE="$PWD/{TOKEN_FILE}"\nexport BEARER_TOKEN_FILE\n'
            f'exec "./{executable}" "$@"\n')


def _quoted(value: str, what: str) -> str:
    if not _XRSL_SAFE.match(value):
        raise InvalidArgument(f"{what} {value!r} cannot go into xRSL (double quote or new line)")
    return f'"{value}"'


def xrsl(pilot: PilotDescription, extra: str = "") -> str:
    """The xRSL relation of one pilot: ``&(executable=...)(...)``."""
    parts = [
        f"(executable={_quoted(pilot.executable, 'executable')})",
        "(inputFiles=" + "".join(f"({_quoted(name, 'input file')} \"\")" for name in pilot.pushed()) + ")",
        f"(stdout=\"{STDOUT}\")(stderr=\"{STDERR}\")",
        f"(outputFiles=(\"{STDOUT}\" \"\")(\"{STDERR}\" \"\"))",
        "(environment=" + "".join(f"({_quoted(name, 'variable')} {_quoted(value, 'value')})"
                                  for name, value in pilot.variables().items()) + ")",
        f"(jobname={_quoted('dirac-pilot-' + pilot.stamp, 'job name')})",
    ]
    if pilot.queue:
        parts.append(f"(queue={_quoted(pilot.queue, 'queue')})")
    if pilot.processors > 1:
        parts.append(f"(count={pilot.processors})(countpernode={pilot.processors})")
    if pilot.memoryMB:
        parts.append(f"(memory={pilot.memoryMB})")
    if pilot.cpuTimeMinutes:
        parts.append(f"(cputime={pilot.cpuTimeMinutes})")
    if pilot.delegationID:
        parts.append(f"(delegationid={_quoted(pilot.delegationID, 'delegation id')})")
    if pilot.executables:
        parts.append("(executables=" + " ".join(_quoted(name, "executable") for name in pilot.executables) + ")")
    return "&" + "".join(parts) + extra


def xrslBulk(pilots: list[PilotDescription], extra: str = "") -> str:
    """One xRSL document for all ``pilots`` (a multi-request ``+(&...)(&...)`` when there are several)."""
    relations = [xrsl(pilot, extra) for pilot in pilots]
    if len(relations) == 1:
        return relations[0]
    return "+" + "".join(f"({relation})" for relation in relations)


def adl(pilot: PilotDescription) -> str:
    """The ADL ActivityDescription of one pilot."""
    environment = "".join(f"<Environment><Name>{escape(name)}</Name><Value>{escape(value)}</Value></Environment>"
                          for name, value in pilot.variables().items())
    resources = f"<QueueName>{escape(pilot.queue)}</QueueName>" if pilot.queue else ""
    if pilot.processors > 1:
        resources += (f"<SlotRequirement><NumberOfSlots>{pilot.processors}</NumberOfSlots>"
                      f"<SlotsPerHost>{pilot.processors}</SlotsPerHost></SlotRequirement>")
    if pilot.memoryMB:
        resources += f"<IndividualPhysicalMemory>{pilot.memoryMB * 1024 * 1024}</IndividualPhysicalMemory>"
    executable = escape(pilot.executable)
    delegation = (f"<nordugrid-adl:DelegationID>{escape(pilot.delegationID)}</nordugrid-adl:DelegationID>"
                  if pilot.delegationID else "")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ActivityDescription xmlns="{ADL_NAMESPACE}" '
        f'xmlns:nordugrid-adl="{NORDUGRID_ADL_NAMESPACE}">'
        f"<ActivityIdentification><Name>dirac-pilot-{escape(pilot.stamp)}</Name></ActivityIdentification>"
        f"<Application><Executable><Path>{executable}</Path></Executable>"
        f"<Output>{STDOUT}</Output><Error>{STDERR}</Error>{environment}</Application>"
        f"<Resources>{resources}</Resources>"
        "<DataStaging>" + "".join(
            f"<InputFile><Name>{escape(name)}</Name>"
            f"<IsExecutable>{'true' if name == pilot.executable or name in pilot.executables else 'false'}"
            "</IsExecutable></InputFile>" for name in pilot.pushed()) +
        f"<OutputFile><Name>{STDOUT}</Name></OutputFile><OutputFile><Name>{STDERR}</Name></OutputFile>"
        f"{delegation}</DataStaging></ActivityDescription>"
    )
