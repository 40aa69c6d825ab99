"""dirac-login: sign in (OAuth2 device code flow) and save the token.

Directly at the identity provider (the default), or through the DIRAC server's authorization server
(``--use-diracas``, ``-I <issuer>``, or ``/DIRAC/Security/Authorization/LoginThroughServer = yes``),
as DIRAC's own ``dirac-login --use-diracas --token`` does: the server then issues the tokens.
"""

from __future__ import annotations

import datetime
import sys
import time

from dirac.Core.Base.Script import EXIT_AUTH, EXIT_OK, EXIT_USAGE, Script, exitCodeFor
from dirac.Core.Config import gConfig
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


def _describeDIRAC(info: dict) -> str:
    """What DIRAC's dirac-login prints about the saved token."""
    left = datetime.timedelta(seconds=int(info["secondsLeft"]))
    rows = [("subject", info["subject"]), ("issuer", info["issuer"]), ("timeleft", str(left)),
            ("username", info["username"]), ("DIRAC group", info["group"]),
            ("properties", ", ".join(info["properties"]))]
    return "\n".join(f"{label.ljust(13)}: {value}" for label, value in rows)


def _announceDirect(device: dict) -> None:
    url = device.get("verification_uri_complete") or device["verification_uri"]
    print(f"Open {url} in a browser and sign in; the code is {device['user_code']}", flush=True)


def _announceDIRAC(device: dict) -> None:
    """What DIRAC's dirac-login prints to start the sign-in."""
    print(f"Use the following link to continue\n{device['verification_uri_complete']}", flush=True)
    print("Authorization pending.. (use CNTL + C to stop)", file=sys.stderr, flush=True)


def deviceLogin(script: Script, provider: IdProviders.IdProvider, scope: str, tokenFile: str | None,
                throughServer: bool) -> int:
    """The device code flow at ``provider``: announce the URL, wait for the sign-in, save the tokens, ask the
    server who the token's bearer is and print it (as DIRAC's dirac-login does when ``throughServer``)."""
    try:
        client = OAuth2Client(provider)
        device = client.deviceAuthorization(scope)
        (_announceDIRAC if throughServer else _announceDirect)(device)
        token = client.pollDeviceToken(device, _progress)
    except DiracError as exc:
        return script.fail(exc.message, EXIT_AUTH)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    location = Tokens.writeTokenFile(token, tokenFile)
    if throughServer and not script.wantsJSON:
        print(f"New token is saved to {location}.")
    who = RPCClient("Configuration/Server", token=token["access_token"]).whoami()
    if not who["OK"]:
        return script.fail(f"signed in (token saved to {location}) but DIRAC refuses the token: {who['Message']}",
                           exitCodeFor(who) if exitCodeFor(who) != 1 else EXIT_AUTH)
    claims = Tokens.accessTokenClaims(token)
    expiry = Tokens.expiresAt(token) or time.time()
    info = {"provider": provider.name, "tokenFile": location, "subject": claims.get("sub"), "issuer": claims.get("iss"),
            "secondsLeft": max(0, int(expiry - time.time())), "username": who["Value"].get("username"),
            "group": who["Value"].get("group"), "properties": who["Value"].get("properties", [])}
    script.output(info, _describeDIRAC if throughServer else _describe)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of dirac-login."""
    script = Script("Sign in (device code flow) at the identity provider, or through the DIRAC server with "
                    "--use-diracas, and save the access and refresh tokens to $BEARER_TOKEN_FILE (or "
                    "/tmp/bt_u<uid>).", jsonOutput=True)
    script.parser.add_argument("group", nargs="?", help="the DIRAC group to act in (default: the default group; "
                               "through the server: chosen in the browser when several)")
    script.parser.add_argument("-p", "--provider", help="the identity provider (a /Resources/IdProviders section)")
    script.parser.add_argument("-f", "--file", "-O", "--out", dest="file",
                               help="token file (default: $BEARER_TOKEN_FILE or /tmp/bt_u<uid>)")
    script.parser.add_argument("--use-diracas", action="store_true",
                               help="sign in through the DIRAC server's authorization server (/auth), which issues "
                               "the tokens (default with /DIRAC/Security/Authorization/LoginThroughServer = yes)")
    script.parser.add_argument("-I", "--issuer", help="the authorization server's URL (implies --use-diracas; "
                               "default /DIRAC/Security/Authorization/issuer)")
    args = script.parseArgs(argv)
    if args.use_diracas or args.issuer or \
            gConfig.getValue(f"{IdProviders.AUTHORIZATION}/LoginThroughServer", False):
        server = IdProviders.authorizationServer(args.issuer)
        if server is None:
            return script.fail(f"no authorization server: give its URL with --issuer or set "
                               f"{IdProviders.AUTHORIZATION}/issuer", EXIT_USAGE)
        return deviceLogin(script, server, server.scopeWithGroup("", args.group), args.file, True)
    try:
        provider = chooseProvider(args.provider)
    except DiracError as exc:
        return script.fail(exc.message, EXIT_USAGE)
    scope = provider.scopeWithGroup(provider.scope or "openid offline_access", args.group)
    return deviceLogin(script, provider, scope, args.file, False)


if __name__ == "__main__":
    sys.exit(main())
