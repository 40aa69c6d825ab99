"""The cloud-init user data of a pilot VM, and what the VM's console tells about its pilot's end.

One VM runs one pilot. Its user data is a ``#cloud-config`` document (written as JSON, which is
YAML, so cloud-init reads it as it is) that

* writes ``/var/lib/dirac-pilot/pilot.py`` (the pilot wrapper, 0755), ``proxy.pem`` (the pilot
  proxy, 0600) and ``token`` (the pilot token, 0600) when given, all ``gz+b64`` encoded, and
  ``run-pilot.sh``;
* runs ``run-pilot.sh`` (``runcmd``), which exports ``DIRAC_PILOT_STAMP``, ``X509_USER_PROXY``
  and ``BEARER_TOKEN_FILE``, runs the pilot in ``/var/lib/dirac-pilot/work`` under ``timeout``
  (the VM's lifetime), removes the credentials, prints ``dirac-pilot <stamp>: exit code <n>``
  and powers the VM off.

cloud-init sends the output of ``runcmd`` to the VM's console, so the pilot's output and its exit
code can be read with Nova's ``os-getConsoleOutput`` once the VM is ``SHUTOFF``.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from shlex import quote

#: where the pilot's files live on the VM
PILOT_DIRECTORY = "/var/lib/dirac-pilot"
#: Nova refuses user data longer than this (after base64 encoding)
MAX_USER_DATA = 65535

_RUN_PILOT = """#!/bin/bash
# dirac-seed pilot {stamp} on a VM started by the Cloud computing element {ce}
here=$(cd "$(dirname "$0")" && pwd)
export DIRAC_PILOT_STAMP={stamp}
{exports}
mkdir -p "$here/work" && cd "$here/work" || exit 1
echo "dirac-pilot {stamp}: starting"
timeout --signal=TERM --kill-after=60 {timeout} "$here/pilot.py" 2>&1 | tee "$here/pilot.log"
rc=${{PIPESTATUS[0]}}
rm -f "$here/proxy.pem" "$here/token"
echo "dirac-pilot {stamp}: exit code $rc"
poweroff
"""
_EXIT_CODE = re.compile(r"^dirac-pilot ([0-9a-f]{16}): exit code (\d+)\s*$", re.M)


def _compressed(path: str, data: bytes, permissions: str) -> dict[str, str]:
    return {"path": path, "encoding": "gz+b64", "permissions": permissions,
            "content": base64.b64encode(gzip.compress(data, mtime=0)).decode()}


def pilotUserData(ceName: str, stamp: str, executable: bytes, proxy: bytes | None, token: str | None,
                  timeout: int) -> str:
    """The ``#cloud-config`` user data of the VM of pilot ``stamp`` (ValueError when too large for Nova)."""
    files = [_compressed(f"{PILOT_DIRECTORY}/pilot.py", executable, "0755")]
    exports = []
    if proxy is not None:
        files.append(_compressed(f"{PILOT_DIRECTORY}/proxy.pem", proxy, "0600"))
        exports.append('export X509_USER_PROXY="$here/proxy.pem"')
    if token:
        files.append(_compressed(f"{PILOT_DIRECTORY}/token", token.encode(), "0600"))
        exports.append('export BEARER_TOKEN_FILE="$here/token"')
    script = _RUN_PILOT.format(stamp=quote(stamp), ce=ceName, exports="\n".join(exports), timeout=int(timeout))
    files.append({"path": f"{PILOT_DIRECTORY}/run-pilot.sh", "permissions": "0755", "content": script})
    document = {"write_files": files, "runcmd": [["/bin/bash", f"{PILOT_DIRECTORY}/run-pilot.sh"]]}
    userData = "#cloud-config\n" + json.dumps(document, indent=1) + "\n"
    encodedSize = (len(userData.encode()) + 2) // 3 * 4
    if encodedSize > MAX_USER_DATA:
        raise ValueError(f"the pilot's user data is {encodedSize} bytes once encoded, more than the {MAX_USER_DATA} "
                         "Nova accepts (a smaller pilot wrapper, e.g. without shipped CA certificates, fits)")
    return userData


def pilotExitCode(console: str, stamp: str) -> int | None:
    """The exit code the VM's console shows for pilot ``stamp`` (None when it shows none)."""
    codes = [int(code) for found, code in _EXIT_CODE.findall(console.replace("\r", "")) if found == stamp]
    return codes[-1] if codes else None
