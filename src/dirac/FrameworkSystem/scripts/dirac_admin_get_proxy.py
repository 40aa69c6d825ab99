"""dirac-admin-get-proxy: download a proxy of a user in one of the user's groups from the ProxyManager."""

from __future__ import annotations

import sys
from pathlib import Path

from dirac.Core.Base.Script import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, Script, exitCodeFor
from dirac.Core.Config import Registry
from dirac.FrameworkSystem.Client.ProxyManagerClient import ProxyManagerClient
from dirac.FrameworkSystem.scripts.dirac_proxy_info import formatProxyInfo, proxyInfo
from dirac.FrameworkSystem.scripts.dirac_proxy_init import parseValidity


def main(argv: list[str] | None = None) -> int:
    """Entry point of dirac-admin-get-proxy."""
    script = Script("Get a proxy of USER in GROUP from the ProxyManager (needs FullDelegation or LimitedDelegation).",
                    jsonOutput=True)
    script.parser.add_argument("user", help="user name, or a DN starting with /")
    script.parser.add_argument("group", help="DIRAC group of the proxy (one of the user's groups)")
    script.parser.add_argument("-v", "--valid", type=parseValidity, default=parseValidity("12:00"), metavar="HH:MM",
                               help="validity of the proxy (default 12:00)")
    script.parser.add_argument("-l", "--limited", action="store_true", help="ask for a limited proxy")
    script.parser.add_argument("-u", "--out", help="where to write it (default: ./proxy.<user>.<group>)")
    args = script.parseArgs(argv)

    if args.user.startswith("/"):
        userDN, username = args.user, Registry.getUsernameForDN(args.user) or args.user
    else:
        dns = Registry.getDNsForUsername(args.user)
        if not dns:
            return script.fail(f"no user {args.user} in the Registry", EXIT_NOT_FOUND)
        userDN, username = dns[0], args.user
    result = ProxyManagerClient().downloadProxy(userDN, args.group, limited=args.limited,
                                                requiredTimeLeft=args.valid)
    if not result["OK"]:
        return script.fail(result["Message"], exitCodeFor(result))
    out = Path(args.out or f"proxy.{username}.{args.group}")
    try:
        result["Value"].dumpToFile(out)
    except OSError as exc:
        return script.fail(f"cannot write the proxy to {out}: {exc.strerror}", EXIT_FAILED)
    script.output(proxyInfo(result["Value"], out), lambda data: f"Proxy of {username} written to {out}:\n"
                  + formatProxyInfo(data))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
