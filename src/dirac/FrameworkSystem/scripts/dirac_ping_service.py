"""dirac-ping-service: call ``ping`` (and optionally ``whoami``) on a service."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import EXIT_OK, Script, exitCodeFor
from dirac.Core.Tornado.Client import RPCClient


def main(argv: list[str] | None = None) -> int:
    script = Script("Check that a service answers, and who it thinks you are.", jsonOutput=True)
    script.parser.add_argument("service", metavar="System/Service|URL")
    script.parser.add_argument("--whoami", action="store_true", help="also show the credentials the service sees")
    args = script.parseArgs(argv)
    client = RPCClient(args.service, timeout=30)
    result = client.ping()
    if not result["OK"]:
        return script.fail(result["Message"], exitCodeFor(result))
    answer = {"ping": result["Value"]}
    if args.whoami:
        who = client.whoami()
        if not who["OK"]:
            return script.fail(who["Message"], exitCodeFor(who))
        answer["whoami"] = who["Value"]

    def text(data: dict) -> str:
        ping = data["ping"]
        lines = [f"{ping['name']} on {ping['host']} answers (version {ping['version']})"]
        if "whoami" in data:
            who = data["whoami"]
            lines += [f"  you are: {who.get('username') or who.get('hostname')} ({who.get('DN')})",
                      f"  group:   {who.get('group')}",
                      f"  properties: {', '.join(who.get('properties', []))}"]
        return "\n".join(lines)

    script.output(answer, text)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
