"""dirac-login: sign in at the identity provider (OAuth2 device code flow) and save the token."""

from __future__ import annotations

import datetime
import sys
import time

from dirac.Core.Base.Script import EXIT_AUTH, EXIT_OK, EXIT_USAGE, Script, exitCodeFor
from dirac.Core.Security import IdProviders, Tokens
from dirac.Core.Security.OAuth2 import OAuth2Client
from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.Exceptions import DiracError


def chooseProvider(name: str | None) -> IdProviders.IdProvider:
    """The provider named on the command line, else the only one configured."""
    if name:
        return IdProviders.getIdProvider(name)
    names = IdProviders.idProviderNames()
    if len(names) != 1:
        raise DiracError(f"choose an identity provider with --provider: configured are {', '.join(names) or 'none'}"
                         f" (/Resources/IdProviders)")
    return IdProviders.getIdProvider(names[0])


def _progress(left: float) -> None:
    if sys.stderr.isatty():
        print(f"\rwaiting for the sign-in, {int(left)} s left ", end="", file=sys.stderr, flush=True)


def _describe(info: dict) -> str:
    left = datetime.timedelta(seconds=int(info["secondsLeft"]))
    return "\n".join([
        f"Signed in at {info['provider']}; token saved to {info['tokenFile']}",
        f"subject    : {info['subject']}",
        f"issuer     : {info['issuer']}",
        f"time left  : {left}",
        f"username   : {info['username']}",
        f"group      : {info['group']}",
        f"properties : {', '.join(info['properties'])}",
    ])


def main(argv: list[str] | None = None) -> int:
    """Entry point of dirac-login."""
    script = Script("Sign in at the identity provider (device code flow) and save the access and refresh "
                    "tokens to $BEARER_TOKEN_FILE (or /tmp/bt_u<uid>).", jsonOutput=True)
    script.parser.add_argument("group", nargs="?", help="the DIRAC group to act in (default: the default group)")
    script.parser.add_argument("-p", "--provider", help="the identity provider (a /Resources/IdProviders section)")
    script.parser.add_argument("-f", "--file", help="token file (default: $BEARER_TOKEN_FILE or /tmp/bt_u<uid>)")
    args = script.parseArgs(argv)
    try:
        provider = chooseProvider(args.provider)
    except DiracError as exc:
        return script.fail(exc.message, EXIT_USAGE)
    scope = " ".join(filter(None, [provider.scope or "openid offline_access", f"group:{args.group}" if args.group else ""]))
    try:
        client = OAuth2Client(provider)
        device = client.deviceAuthorization(scope)
        url = device.get("verification_uri_complete") or device["verification_uri"]
        print(f"Open {url} in a browser and sign in; the code is {device['user_code']}", flush=True)
        token = client.pollDeviceToken(device, _progress)
    except DiracError as exc:
        return script.fail(exc.message, EXIT_AUTH)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    location = Tokens.writeTokenFile(token, args.file)
    who = RPCClient("Configuration/Server", token=token["access_token"]).whoami()
    if not who["OK"]:
        return script.fail(f"signed in (token saved to {location}) but DIRAC refuses the token: {who['Message']}",
                           exitCodeFor(who) if exitCodeFor(who) != 1 else EXIT_AUTH)
    claims = Tokens.accessTokenClaims(token)
    expiry = Tokens.expiresAt(token) or time.time()
    info = {"provider": provider.name, "tokenFile": location, "subject": claims.get("sub"), "issuer": claims.get("iss"),
            "secondsLeft": max(0, int(expiry - time.time())), "username": who["Value"].get("username"),
            "group": who["Value"].get("group"), "properties": who["Value"].get("properties", [])}
    script.output(info, _describe)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
