"""dirac-logout: revoke the refresh token at the identity provider and remove the token file."""

from __future__ import annotations

import sys

from dirac.Core.Base.Script import EXIT_FAILED, EXIT_OK, Script
from dirac.Core.Security import Tokens
from dirac.Core.Security.OAuth2 import OAuth2Client
from dirac.Core.Utilities.Exceptions import DiracError


def main(argv: list[str] | None = None) -> int:
    """Entry point of dirac-logout."""
    script = Script("Revoke the refresh token at the identity provider and remove the token file.", jsonOutput=True)
    script.parser.add_argument("-f", "--file", help="token file (default: $BEARER_TOKEN_FILE or /tmp/bt_u<uid>)")
    args = script.parseArgs(argv)
    location = args.file or Tokens.getTokenFileLocation()
    try:
        token = Tokens.readTokenFile(location)
    except DiracError:
        script.output({"path": location, "removed": False, "revoked": False}, f"no token at {location}: nothing to do")
        return EXIT_OK
    revoked = False
    if token.get("refresh_token"):
        try:
            OAuth2Client(Tokens.providerOf(token)).revoke(token["refresh_token"])
            revoked = True
        except DiracError as exc:
            Tokens.removeTokenFile(location)
            return script.fail(f"token file {location} removed, but the refresh token may still be valid: "
                               f"{exc.message}", EXIT_FAILED)
    Tokens.removeTokenFile(location)
    script.output({"path": location, "removed": True, "revoked": revoked},
                  f"token {location} removed" + (" and its refresh token revoked" if revoked else ""))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
