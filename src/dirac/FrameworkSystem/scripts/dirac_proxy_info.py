"""dirac-proxy-info: show the local proxy (subject, identity, time left, DIRAC group, properties)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dirac.Core.Base.Script import EXIT_FAILED, EXIT_OK, Script
from dirac.Core.Config import Registry
from dirac.Core.Security import Locations
from dirac.Core.Security.X509 import X509Chain
from dirac.Core.Utilities.Exceptions import SecurityError


def formatSeconds(seconds: int) -> str:
    """HH:MM:SS (hours may exceed 24)."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def proxyInfo(chain: X509Chain, path: str | Path) -> dict[str, Any]:
    """What dirac-proxy-info reports about ``chain``, with the Registry's view when it knows the DN."""
    identity = chain.identityDN
    info: dict[str, Any] = {
        "subject": chain.leaf.subjectDN,
        "issuer": chain.leaf.issuerDN,
        "identity": identity,
        "secondsLeft": chain.remainingSeconds,
        "timeleft": formatSeconds(chain.remainingSeconds),
        "group": chain.diracGroup,
        "isProxy": chain.isProxy,
        "isLimitedProxy": chain.isLimitedProxy,
        "path": str(path),
    }
    hostname = Registry.getHostnameForDN(identity)
    username = None if hostname else Registry.getUsernameForDN(identity)
    if hostname:
        info["hostname"] = hostname
        info["properties"] = Registry.getPropertiesForHost(hostname)
    elif username:
        info["username"] = username
        group = chain.diracGroup or Registry.getDefaultGroupForUser(username)
        if group and group in Registry.getGroupsForUser(username):
            info["properties"] = Registry.getPropertiesForGroup(group)
        else:
            info["validGroup"] = False
    return info


def formatProxyInfo(info: dict[str, Any]) -> str:
    """The text block dirac-proxy-info and dirac-proxy-init print."""
    rows = [("subject", info["subject"]), ("issuer", info["issuer"]), ("identity", info["identity"]),
            ("timeleft", info["timeleft"]), ("DIRAC group", info["group"] or "<not set>"),
            ("rfc", info["isProxy"]), ("path", info["path"])]
    if info.get("isLimitedProxy"):
        rows.append(("limited", True))
    if "hostname" in info:
        rows.append(("hostname", info["hostname"]))
    if "username" in info:
        rows.append(("username", info["username"]))
    if info.get("validGroup") is False:
        rows.append(("properties", f"<user {info.get('username')} is not in group {info['group']}>"))
    elif "properties" in info:
        rows.append(("properties", ", ".join(info["properties"])))
    return "\n".join(f"{name:<12} : {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    """Entry point of dirac-proxy-info."""
    script = Script("Print information about the local proxy.", jsonOutput=True)
    script.parser.add_argument("-f", "--file", help="proxy file (default: $X509_USER_PROXY or /tmp/x509up_u<uid>)")
    args = script.parseArgs(argv)
    path = args.file or Locations.getProxyLocation()
    if not Path(path).exists():
        return script.fail(f"no proxy found at {path}: run dirac-proxy-init", EXIT_FAILED)
    try:
        chain = X509Chain.fromFile(path)
        identity = chain.identityDN
    except SecurityError as exc:
        return script.fail(f"cannot read the proxy {path}: {exc}", EXIT_FAILED)
    if chain.remainingSeconds <= 0:
        return script.fail(f"the proxy {path} of {identity} expired on "
                           f"{chain.notAfter:%Y-%m-%d %H:%M:%S} UTC: run dirac-proxy-init", EXIT_FAILED)
    script.output(proxyInfo(chain, path), formatProxyInfo)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
