"""The user's token file (WLCG bearer token discovery, as DIRAC) and access tokens refreshed when expired.

Location: ``$BEARER_TOKEN_FILE``, else ``$XDG_RUNTIME_DIR/bt_u<uid>``, else ``/tmp/bt_u<uid>``.
Content: the JSON token response of the identity provider (``access_token``, ``refresh_token``,
``expires_at``, ``scope``) plus ``provider`` (the ``/Resources/IdProviders`` name), mode 0600.
A file holding only a JWT is read too. ``$BEARER_TOKEN`` wins over the file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt
from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Security import IdProviders
from dirac.Core.Utilities.Exceptions import AuthenticationError, DiracError

BEARER_TOKEN_ENV = "BEARER_TOKEN"
BEARER_TOKEN_FILE_ENV = "BEARER_TOKEN_FILE"
#: refresh an access token this many seconds before it expires
REFRESH_MARGIN = 60


def getTokenFileLocation() -> str:
    """Where the user's token file is, whether or not it exists."""
    if os.environ.get(BEARER_TOKEN_FILE_ENV):
        return os.environ[BEARER_TOKEN_FILE_ENV]
    if os.environ.get("XDG_RUNTIME_DIR"):
        return f"{os.environ['XDG_RUNTIME_DIR']}/bt_u{os.getuid()}"
    return f"/tmp/bt_u{os.getuid()}"


def readTokenFile(location: str | None = None) -> dict[str, Any]:
    """The token dict in the token file; DiracError when missing or unreadable."""
    path = Path(location or getTokenFileLocation())
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise DiracError(f"no token found at {path}: run dirac-login", DErrno.ENOAUTH) from None
    except OSError as exc:
        raise DiracError(f"cannot read the token file {path}: {exc.strerror}", DErrno.ENOAUTH) from exc
    if text.startswith("{"):
        try:
            token = json.loads(text)
        except ValueError as exc:
            raise DiracError(f"the token file {path} is not JSON", DErrno.ENOAUTH) from exc
    else:
        token = {"access_token": text}
    if not isinstance(token, dict) or not token.get("access_token"):
        raise DiracError(f"the token file {path} holds no access token", DErrno.ENOAUTH)
    return token


def writeTokenFile(token: dict[str, Any], location: str | None = None) -> str:
    """Write ``token`` atomically with mode 0600; returns the path."""
    path = Path(location or getTokenFileLocation())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(token, out)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)


def removeTokenFile(location: str | None = None) -> bool:
    """Delete the token file; False when there was none."""
    try:
        Path(location or getTokenFileLocation()).unlink()
    except FileNotFoundError:
        return False
    return True


def accessTokenClaims(token: dict[str, Any]) -> dict[str, Any]:
    """The (unverified: the server verifies) claims of the access token, for display and expiry."""
    try:
        return jwt.decode(token["access_token"], options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}


def expiresAt(token: dict[str, Any]) -> float | None:
    """When the access token expires (epoch seconds), from ``expires_at`` or its ``exp`` claim."""
    value = token.get("expires_at") or accessTokenClaims(token).get("exp")
    return float(value) if value else None


def inFirstHalfOfLife(issuedAt: float, expiresAt: float) -> bool:
    """Whether a token issued at ``issuedAt`` and expiring at ``expiresAt`` has more than half its lifetime left
    (the rule by which pilot tokens are reused rather than renewed)."""
    return expiresAt - time.time() > (expiresAt - issuedAt) / 2


def providerOf(token: dict[str, Any]) -> IdProviders.IdProvider:
    """The identity provider that issued ``token`` (by its ``provider`` entry or the issuer), or DIRAC's own
    authorization server when its issuer issued it."""
    issuer = accessTokenClaims(token).get("iss", "")
    ownIssuer = IdProviders.authorizationServerIssuer()
    if ownIssuer and (token.get("provider") == IdProviders.AUTH_SERVER_NAME or issuer.rstrip("/") == ownIssuer):
        return IdProviders.authorizationServer()  # type: ignore[return-value]
    if token.get("provider"):
        return IdProviders.getIdProvider(token["provider"])
    provider = IdProviders.idProviderForIssuer(issuer) if issuer else None
    if provider is None:
        raise AuthenticationError(f"no identity provider configured for the token issuer {issuer!r}")
    return provider


def refreshTokenDict(token: dict[str, Any]) -> dict[str, Any]:
    """``token`` with a new access token from its refresh token (keeping the refresh token unless rotated)."""
    from dirac.Core.Security.OAuth2 import OAuth2Client

    if not token.get("refresh_token"):
        raise AuthenticationError("the access token expired and there is no refresh token: run dirac-login")
    fresh = OAuth2Client(providerOf(token)).refresh(token["refresh_token"])
    fresh.setdefault("refresh_token", token["refresh_token"])
    return fresh


def currentAccessToken(location: str | None = None) -> str:
    """A valid access token: ``$BEARER_TOKEN``, else the token file's, refreshed (and saved) when about to expire."""
    if os.environ.get(BEARER_TOKEN_ENV, "").strip():
        return os.environ[BEARER_TOKEN_ENV].strip()
    token = readTokenFile(location)
    expiry = expiresAt(token)
    if expiry is not None and expiry - REFRESH_MARGIN <= time.time():
        try:
            token = refreshTokenDict(token)
        except AuthenticationError as exc:
            raise DiracError(f"your access token expired and cannot be refreshed: {exc}", DErrno.ENOAUTH) from exc
        writeTokenFile(token, location)
    return token["access_token"]
