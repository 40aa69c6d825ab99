"""The OAuth2 grants and endpoints of the authorization server: authlib's protocol code over AuthDB.

Each one-time secret is consumed by an atomic update before tokens are made, so that two
concurrent requests with the same device code, authorization code or refresh token cannot both
succeed; a refresh token presented after it was used revokes its whole sign-in session (token
theft detection of the OAuth 2.0 security best practice).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc8628 import (
    AuthorizationPendingError,
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    ExpiredTokenError,
    SlowDownError,
)
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey

from dirac.Core.Base.DB import utcnow
from dirac.Core.Security import TokenSigning
from dirac.FrameworkSystem.DB.AuthDB import CONSUMED, DENIED, GRANTED
from dirac.FrameworkSystem.Logic.AuthClients import AuthUser, supportedScope

if TYPE_CHECKING:
    from dirac.FrameworkSystem.Logic.AuthServer import AuthServer

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


class DeviceEndpoint(DeviceAuthorizationEndpoint):
    """POST <issuer>/device: a device code and user code; the user opens <issuer>/device?user_code=..."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS
    server: AuthServer

    def get_verification_uri(self) -> str:
        return f"{self.server.settings.issuer}/device"

    def save_device_credential(self, client_id: str, scope: str, data: dict[str, Any]) -> None:
        data["expires_in"] = self.server.settings.deviceCodeLifetime
        data["interval"] = self.server.settings.pollInterval
        scope = supportedScope(scope)
        self.server.db.purgeExpired()
        self.server.db.addDeviceCode(data["device_code"], data["user_code"], client_id, scope,
                                     self.server.settings.deviceCodeLifetime, self.server.settings.pollInterval)
        self.server.log.info("device login started for client %s (scope %r)", client_id, scope or "")


class DeviceCredential(dict):
    """A device login as authlib sees it."""

    def get_client_id(self) -> str:
        return self["clientID"]

    def get_scope(self) -> str:
        return self["scope"]

    def get_user_code(self) -> str:
        return self["userCode"]

    def is_expired(self) -> bool:
        return self["expiresAt"] <= utcnow()


class DeviceGrant(DeviceCodeGrant):
    """grant_type=urn:ietf:params:oauth:grant-type:device_code at <issuer>/token."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    server: AuthServer

    def query_device_credential(self, device_code: str) -> DeviceCredential | None:
        found = self.server.db.getDeviceCode(device_code)
        return DeviceCredential(found, deviceCode=device_code) if found else None

    def validate_device_credential(self, credential: DeviceCredential) -> AuthUser:
        if credential.is_expired():
            raise ExpiredTokenError()
        if credential["status"] == GRANTED:
            return AuthUser.fromDict(credential["user"])
        if credential["status"] == DENIED:
            raise AccessDeniedError(description=credential["reason"])
        if credential["status"] == CONSUMED:
            raise InvalidGrantError(description="the tokens of this device login were already issued")
        if self.should_slow_down(credential):
            raise SlowDownError()
        raise AuthorizationPendingError()

    def should_slow_down(self, credential: DeviceCredential) -> bool:
        previous = self.server.db.recordPoll(credential["deviceCode"])
        return previous is not None and (utcnow() - previous).total_seconds() < credential["interval"] - 1

    def query_user_grant(self, user_code: str) -> Any:  # validate_device_credential does this
        raise NotImplementedError

    def create_token_response(self) -> tuple[int, dict, list]:
        if not self.server.db.consumeDeviceCode(self.request.credential["deviceCode"]):
            raise InvalidGrantError(description="the tokens of this device login were already issued")
        return super().create_token_response()


class AuthorizationCode(dict):
    """A consumed authorization code as authlib sees it."""

    def get_redirect_uri(self) -> str:
        return self["redirectURI"]

    def get_scope(self) -> str:
        return self["scope"]

    def get_nonce(self) -> str | None:
        return self["nonce"] or None

    def get_auth_time(self) -> int:
        return self["authTime"]

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None

    @property
    def code_challenge(self) -> str:
        return self["codeChallenge"]

    @property
    def code_challenge_method(self) -> str:
        return self["codeChallengeMethod"]


class CodeGrant(grants.AuthorizationCodeGrant):
    """response_type=code at <issuer>/authorization, grant_type=authorization_code at <issuer>/token; PKCE with
    S256 is required of every client."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    server: AuthServer

    def validate_authorization_request(self) -> str:
        redirectURI = super().validate_authorization_request()
        if self.request.payload.data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE is required: code_challenge with code_challenge_method=S256",
                                      redirect_uri=redirectURI, state=self.request.payload.state)
        return redirectURI

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        user: AuthUser = request.user
        self.server.db.addAuthorizationCode(
            code, request.client.get_client_id(), data.get("redirect_uri", ""), request.scope, user.asDict(),
            data.get("code_challenge", ""), data.get("code_challenge_method", ""), data.get("nonce", ""),
            int(time.time()), self.server.settings.authorizationCodeLifetime)

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        found = self.server.db.consumeAuthorizationCode(code, client.get_client_id())
        return AuthorizationCode(found) if found else None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing left to do: the code was marked used when it was read."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> AuthUser:
        return AuthUser.fromDict(authorization_code["user"])


class OpenIDConnectCode(OpenIDCode):
    """The ID token of the authorization code flow when ``openid`` is in the scope (RS256, the server's key)."""

    def __init__(self, server: AuthServer):
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return self.server.db.nonceUsed(request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: Any) -> RSAKey:
        key = TokenSigning.signingKey()
        return RSAKey.import_key(key.privatePEM, {"kid": key.kid})

    def get_client_algorithm(self, client: Any) -> str:
        return TokenSigning.ALGORITHM

    def get_encode_header(self, client: Any) -> dict[str, str]:
        return {"alg": TokenSigning.ALGORITHM, "kid": TokenSigning.signingKey().kid}

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        return {"iss": self.server.settings.issuer, "aud": [client.get_client_id()],
                "exp": int(time.time()) + self.server.settings.idTokenLifetime}

    def generate_user_info(self, user: AuthUser, scope: str) -> UserInfo:
        return UserInfo(self.server.userInfo(user))


class RefreshCredential(dict):
    """A stored refresh token as authlib sees it (``token`` is the presented one)."""

    def check_client(self, client: Any) -> bool:
        return self["clientID"] == client.get_client_id()

    def get_scope(self) -> str:
        return self["scope"]


class RefreshGrant(grants.RefreshTokenGrant):
    """grant_type=refresh_token: a new access token and a new refresh token (the old one is used up); the
    identity provider is asked first whether it still grants the user the group."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: AuthServer

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential | None:
        found = self.server.db.getRefreshToken(refresh_token)
        if found is None:
            return None
        user = found["user"]
        if found["revoked"]:
            revoked = self.server.endSession(user["sessionID"])
            self.server.log.warning("a used refresh token of %s@%s was presented again: session %s revoked (%d)",
                                    user["username"], user["group"], user["sessionID"][:8], revoked)
            return None
        if found["expiresAt"] <= utcnow():
            return None
        return RefreshCredential(found, token=refresh_token)

    def authenticate_user(self, refresh_token: RefreshCredential) -> AuthUser:
        user = self.server.recheckUser(AuthUser.fromDict(refresh_token["user"]))
        if not self.server.db.claimRefreshToken(refresh_token["token"]):
            raise InvalidGrantError(description="the refresh token was already used")
        return user

    def revoke_old_credential(self, refresh_token: RefreshCredential) -> None:
        """Nothing left to do: the token was claimed (marked used) before the new tokens were made."""


class Revocation(RevocationEndpoint):
    """POST <issuer>/revoke (RFC 7009): a refresh token or an access token of this server ends its sign-in
    session: every refresh token of it is revoked and the provider's token is revoked and forgotten."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS
    server: AuthServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> RefreshCredential | None:
        found = self.server.db.getRefreshToken(token_string)
        if found is not None:
            return RefreshCredential(found, token=token_string)
        claims = self.server.ownAccessTokenClaims(token_string)
        if claims and claims.get("sid"):
            return RefreshCredential(clientID=claims.get("client_id", ""), scope=claims.get("scope", ""),
                                     user={"sessionID": claims["sid"], "username": claims.get("preferred_username")})
        return None

    def revoke_token(self, token: RefreshCredential, request: Any) -> None:
        count = self.server.endSession(token["user"]["sessionID"])
        self.server.log.info("session %s of %s revoked by client %s (%d refresh tokens)",
                             token["user"]["sessionID"][:8], token["user"].get("username"), token["clientID"], count)
