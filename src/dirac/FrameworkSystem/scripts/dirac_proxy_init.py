"""dirac-proxy-init: make an RFC 3820 proxy carrying a DIRAC group from the user certificate.

When the CS names a ProxyManager (``/Systems/Framework/URLs/ProxyManager``) it also uploads
(delegates) a long proxy there, as DIRAC does, so that pilots can run the user's jobs with the
user's credentials; ``--no-upload`` skips that.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from pathlib import Path

from dirac.Core.Base.Script import EXIT_AUTH, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Script
from dirac.Core.Config import Registry
from dirac.Core.Config.PathFinder import getServiceURLs
from dirac.Core.Security import Locations
from dirac.Core.Security.Keys import isEncryptedPEM
from dirac.Core.Security.X509 import X509Chain
from dirac.Core.Utilities.Exceptions import ConfigurationError, SecurityError
from dirac.FrameworkSystem.Client.ProxyManagerClient import DEFAULT_UPLOAD_LIFETIME, ProxyManagerClient
from dirac.FrameworkSystem.scripts.dirac_proxy_info import formatProxyInfo, proxyInfo

_VALIDITY = re.compile(r"^(\d+):([0-5]?\d)$")


def parseValidity(text: str) -> int:
    """Seconds for an ``HH:MM`` validity (hours may exceed 24)."""
    match = _VALIDITY.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected HH:MM, got {text!r}")
    seconds = int(match.group(1)) * 3600 + int(match.group(2)) * 60
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the validity must be longer than 00:00")
    return seconds


def _passphrase(keyPath: str, fromStdin: bool) -> str | None:
    """The key's passphrase: None for an unencrypted key, else from stdin or a prompt."""
    try:
        encrypted = isEncryptedPEM(Path(keyPath).read_bytes())
    except OSError as exc:
        raise SecurityError(f"cannot read the key {keyPath}: {exc.strerror}") from exc
    if not encrypted:
        return None
    if fromStdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass("Enter Certificate password:")


def _registryGroup(identity: str, requested: str | None) -> tuple[str | None, str | None]:
    """(username, group to use) per the CS Registry; raises SecurityError for a group the user is not in."""
    username = Registry.getUsernameForDN(identity)
    if username is None:
        return None, requested
    groups = Registry.getGroupsForUser(username)
    if requested:
        if requested not in groups:
            allowed = ", ".join(groups) or "none"
            raise SecurityError(f"user {username} is not a member of group {requested} (groups: {allowed})")
        return username, requested
    return username, Registry.getDefaultGroupForUser(username)


def main(argv: list[str] | None = None) -> int:
    """Entry point of dirac-proxy-init."""
    script = Script("Create a proxy from your certificate, carrying your DIRAC group.", jsonOutput=True)
    parser = script.parser
    parser.add_argument("-g", "--group", help="DIRAC group to embed (default: your default group)")
    parser.add_argument("-v", "--valid", type=parseValidity, default=parseValidity("24:00"), metavar="HH:MM",
                        help="validity of the proxy (default 24:00)")
    parser.add_argument("-C", "--cert", help="certificate file (default: $X509_USER_CERT or ~/.globus/usercert.pem)")
    parser.add_argument("-K", "--key", help="key file (default: $X509_USER_KEY or ~/.globus/userkey.pem)")
    parser.add_argument("-u", "--out", help="where to write the proxy (default: $X509_USER_PROXY or /tmp/x509up_u<uid>)")
    parser.add_argument("-b", "--bits", type=int, default=2048, help="RSA key size of the proxy (default 2048)")
    parser.add_argument("-l", "--limited", action="store_true", help="make a limited proxy")
    parser.add_argument("--pass-stdin", action="store_true", help="read the key passphrase from the first line of stdin")
    parser.add_argument("-N", "--no-upload", action="store_true",
                        help="do not upload a long proxy to the ProxyManager")
    parser.add_argument("--upload-valid", type=parseValidity, default=DEFAULT_UPLOAD_LIFETIME, metavar="HH:MM",
                        help="validity of the uploaded proxy (default 720:00, at most the certificate's)")
    args = script.parseArgs(argv)

    defaultCert, defaultKey = Locations.getUserCertificateAndKeyLocation()
    certPath, keyPath = args.cert or defaultCert, args.key or defaultKey
    out = Path(args.out or Locations.getProxyLocation())
    for label, path in (("certificate", certPath), ("key", keyPath)):
        if not Path(path).is_file():
            return script.fail(f"no {label} file at {path} (use -C/-K or $X509_USER_CERT/$X509_USER_KEY)",
                               EXIT_USAGE)
    try:
        userChain = X509Chain.fromCertAndKeyFiles(certPath, keyPath, _passphrase(keyPath, args.pass_stdin))
    except SecurityError as exc:
        return script.fail(str(exc), EXIT_AUTH)
    except (EOFError, KeyboardInterrupt):
        return script.fail("no passphrase given", EXIT_AUTH)

    tmp = out.with_name(f".{out.name}.new-{os.getpid()}")
    previous = os.environ.get("X509_USER_PROXY")
    try:
        proxy = userChain.generateProxy(args.valid, group=args.group, limited=args.limited, bits=args.bits)
        proxy.dumpToFile(tmp)
        # the new proxy is the credential used if the Registry must be fetched from the CS
        os.environ["X509_USER_PROXY"] = str(tmp)
        username, group = _registryGroup(userChain.identityDN, args.group)
        if group != args.group:
            proxy = userChain.generateProxy(args.valid, group=group, limited=args.limited, bits=args.bits)
            proxy.dumpToFile(tmp)
        os.replace(tmp, out)
    except SecurityError as exc:
        return script.fail(str(exc), EXIT_AUTH)
    except OSError as exc:
        return script.fail(f"cannot write the proxy to {out}: {exc.strerror}", EXIT_FAILED)
    finally:
        if tmp.exists():
            tmp.unlink()
        if previous is None:
            os.environ.pop("X509_USER_PROXY", None)
        else:
            os.environ["X509_USER_PROXY"] = previous

    info = proxyInfo(proxy, out)
    if username is None:
        info["registered"] = False
    exitCode = EXIT_OK
    if username and not args.no_upload and _proxyManagerConfigured():
        uploaded = _upload(userChain, args.upload_valid, out)
        info["uploaded"] = uploaded["OK"]
        if not uploaded["OK"]:
            info["uploadError"] = uploaded["Message"]
            exitCode = EXIT_FAILED
    script.output(info, lambda data: "Proxy generated:\n" + formatProxyInfo(data)
                  + ("" if username else "\n(this DN is not registered in the CS Registry)")
                  + _uploadText(data))
    return exitCode


def _proxyManagerConfigured() -> bool:
    try:
        return bool(getServiceURLs("Framework/ProxyManager"))
    except ConfigurationError:
        return False


def _upload(userChain: X509Chain, lifetime: int, proxyFile: Path) -> dict:
    """Delegate a proxy of the certificate to the ProxyManager, connecting with the new proxy."""
    return ProxyManagerClient(proxyLocation=str(proxyFile), useCertificates=False).uploadProxy(userChain, lifetime)


def _uploadText(data: dict) -> str:
    if "uploaded" not in data:
        return ""
    if data["uploaded"]:
        return "\nProxy uploaded to the ProxyManager"
    return f"\nProxy NOT uploaded to the ProxyManager: {data['uploadError']}"


if __name__ == "__main__":
    sys.exit(main())
