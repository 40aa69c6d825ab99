"""LFN rules and who is asking: path validation, the caller, POSIX-like permission bits.

An LFN is an absolute path under the caller's VO root ``/<vo>``: no empty, ``.`` or ``..``
components, no control characters, at most MAX_LFN_LENGTH characters in all and
MAX_NAME_LENGTH per component. Every bulk call checks each LFN and reports the bad ones
in its Failed dict with the reason.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from typing import Any

from dirac.Core.Security import Properties
from dirac.DataManagementSystem.DB.FileCatalogTables import MAX_LFN_LENGTH, MAX_NAME_LENGTH, ROOT


@dataclass(frozen=True)
class Caller:
    """The identity a catalog operation runs as."""

    user: str
    group: str
    vo: str
    isAdmin: bool = False

    @classmethod
    def fromCredentials(cls, credDict: dict[str, Any]) -> Caller:
        """The caller of an RPC: user (or host) name, group, VO, FileCatalogManagement."""
        return cls(user=credDict.get("username") or credDict.get("hostname") or "",
                   group=credDict.get("group") or "", vo=credDict.get("VO") or "",
                   isAdmin=Properties.FileCatalogManagement in credDict.get("properties", []))


#: a valid absolute path other than /: components of 1 to MAX_NAME_LENGTH characters, no control
#: character, no '.' or '..' component (the common case, checked at C speed before the details)
_VALID_PATH = re.compile(rf"(?:/(?!\.\.?(?:/|$))[^/\x00-\x1f\x7f]{{1,{MAX_NAME_LENGTH}}})+")


def lfnError(lfn: Any, caller: Caller, allowRoot: bool = False) -> str | None:
    """Why ``lfn`` is not a valid path for ``caller`` (None when it is)."""
    if isinstance(lfn, str) and len(lfn) <= MAX_LFN_LENGTH and _VALID_PATH.fullmatch(lfn) and (
            caller.isAdmin or (caller.vo and (lfn.startswith(f"/{caller.vo}/") or lfn == f"/{caller.vo}"))):
        return None
    if not isinstance(lfn, str) or not lfn:
        return "Invalid LFN: empty"
    if not lfn.startswith("/"):
        return "Invalid LFN: not an absolute path"
    if lfn == ROOT:
        return None if allowRoot or caller.isAdmin else "Invalid LFN: / is not under a VO root"
    if len(lfn) > MAX_LFN_LENGTH:
        return f"Invalid LFN: longer than {MAX_LFN_LENGTH} characters"
    if any(ord(char) < 32 or ord(char) == 127 for char in lfn):
        return "Invalid LFN: contains control characters"
    components = lfn[1:].split("/")
    for name in components:
        if not name:
            return "Invalid LFN: empty path component (// or a trailing /)"
        if name in (".", ".."):
            return f"Invalid LFN: '{name}' component"
        if len(name) > MAX_NAME_LENGTH:
            return f"Invalid LFN: a component is longer than {MAX_NAME_LENGTH} characters"
    if not caller.isAdmin and components[0] != caller.vo:
        return f"Invalid LFN: not under the VO root /{caller.vo}" if caller.vo else "Invalid LFN: the caller has no VO"
    return None


def homeDirectory(vo: str, user: str) -> str:
    """DIRAC's user home: /<vo>/user/<initial>/<user>."""
    return f"/{vo}/user/{user[0]}/{user}"


_BITS = {"owner": (stat.S_IRUSR, stat.S_IWUSR, stat.S_IXUSR), "group": (stat.S_IRGRP, stat.S_IWGRP, stat.S_IXGRP),
         "other": (stat.S_IROTH, stat.S_IWOTH, stat.S_IXOTH)}


def permissionsFor(caller: Caller, owner: str, group: str, mode: int) -> dict[str, bool]:
    """{Read, Write, Execute} of ``caller`` on an entry: the owner bits, else the group bits, else the others'."""
    if caller.isAdmin:
        return {"Read": True, "Write": True, "Execute": True}
    who = "owner" if caller.user == owner else "group" if caller.group == group else "other"
    read, write, execute = _BITS[who]
    return {"Read": bool(mode & read), "Write": bool(mode & write), "Execute": bool(mode & execute)}
