"""dirac-admin-proxy-expiry: the uploaded proxies that expire within N days (ProxyManagement).

Each one is also logged by the ProxyManager (a warning line per proxy), so running this from cron
gives operators both a report and a trace. Exit code 0 when none expires, 1 when some do.
"""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import EXIT_FAILED, EXIT_OK, Script, exitCodeFor
from dirac.FrameworkSystem.Client.ProxyManagerClient import ProxyManagerClient


def main(argv: list[str] | None = None) -> int:
    """Entry point of dirac-admin-proxy-expiry."""
    script = Script("List the uploaded proxies expiring within N days.", jsonOutput=True)
    script.parser.add_argument("--days", type=float, default=7.0, help="how far ahead to look (default 7)")
    args = script.parseArgs(argv)
    result = ProxyManagerClient().getExpiringProxies(args.days)
    if not result["OK"]:
        return script.fail(result["Message"], exitCodeFor(result))
    expiring = result["Value"]

    def text(rows: list[dict]) -> str:
        if not rows:
            return f"no uploaded proxy expires within {args.days:g} days"
        lines = [f"{'user':<16} {'expires (UTC)':<17} {'left':>9}  DN"]
        lines += [f"{row['UserName']:<16} {row['ExpirationTime']:%Y-%m-%d %H:%M} {row['SecondsLeft'] / 86400:8.1f}d  "
                  f"{row['UserDN']}" for row in rows]
        return "\n".join(lines)

    script.output(expiring, text)
    return EXIT_FAILED if expiring else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
