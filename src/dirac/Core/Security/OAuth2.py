"""The OAuth2 client side with an identity provider (authlib): device code, authorization code with PKCE (the web
portal's login), refresh, client credentials, revocation.

Endpoints come from the provider's discovery document (``IdProviders.providerMetadata``).
Every request has a timeout and verifies TLS with the provider's ``CAFile`` (or the system's CAs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from dirac.Core.Security.IdProviders import IdProvider, providerMetadata
from dirac.Core.Utilities.Exceptions import AuthenticationError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HTTP_TIMEOUT = 30


class OAuth2Client:
    """One OAuth2 client (``client_id``, optional secret) of one identity provider."""

    def __init__(self, provider: IdProvider, clientID: str | None = None, clientSecret: str | None = None):
        self.provider = provider
        self.clientID = clientID or provider.clientID
        if not self.clientID:
            raise AuthenticationError(f"identity provider {provider.name} has no client_id")
        self.clientSecret = clientSecret if clientSecret is not None else provider.clientSecret

    def _session(self, scope: str | None = None) -> OAuth2Session:
        method = "client_secret_basic" if self.clientSecret else "none"
        return OAuth2Session(self.clientID, self.clientSecret or None, scope=scope,
                             token_endpoint_auth_method=method)

    def _endpoint(self, name: str) -> str:
        url = providerMetadata(self.provider).get(name)
        if not url:
            raise AuthenticationError(f"identity provider {self.provider.name} has no {name}")
        return url

    def _fetch(self, session: OAuth2Session, **params: Any) -> dict[str, Any]:
        try:
            token = session.fetch_token(self._endpoint("token_endpoint"), timeout=HTTP_TIMEOUT,
                                        verify=self.provider.verify, **params)
        except OAuthError as exc:
            raise AuthenticationError(f"{self.provider.name} refused the {params.get('grant_type')} grant: "
                                      f"{exc.error}: {exc.description or ''}".rstrip(": ")) from exc
        token = dict(token)
        token["provider"] = self.provider.name
        return token

    def deviceAuthorization(self, scope: str) -> dict[str, Any]:
        """Start a device login: device_code, user_code, verification_uri(_complete), interval, expires_in."""
        session = self._session(scope)
        response = session.post(self._endpoint("device_authorization_endpoint"), timeout=HTTP_TIMEOUT,
                                verify=self.provider.verify, data={"client_id": self.clientID, "scope": scope},
                                withhold_token=True)
        data = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
        if response.status_code != 200 or "device_code" not in data:
            raise AuthenticationError(f"{self.provider.name} refused the device login: "
                                      f"{data.get('error', response.status_code)} {data.get('error_description', '')}")
        return data

    def pollDeviceToken(self, device: dict[str, Any], progress: Callable[[float], None] | None = None) -> dict[str, Any]:
        """Wait until the user signed in (the provider's interval, slowed down when asked), then the tokens."""
        interval = float(device.get("interval") or 5)
        deadline = time.monotonic() + float(device.get("expires_in") or 600)
        session = self._session()
        while time.monotonic() < deadline:
            try:
                return self._fetch(session, grant_type=DEVICE_GRANT, device_code=device["device_code"])
            except AuthenticationError as exc:
                cause = exc.__cause__
                error = cause.error if isinstance(cause, OAuthError) else ""
                if error == "slow_down":
                    interval += 5
                elif error != "authorization_pending":
                    raise
            if progress:
                progress(max(0.0, deadline - time.monotonic()))
            time.sleep(interval)
        raise AuthenticationError("the device login expired before the user signed in")

    def authorizationURL(self, redirectURI: str, scope: str, state: str, codeVerifier: str,
                         nonce: str) -> str:
        """Where to send the browser: the authorization endpoint with an S256 PKCE challenge of ``codeVerifier``."""
        session = OAuth2Session(self.clientID, scope=scope, redirect_uri=redirectURI, code_challenge_method="S256")
        url, _ = session.create_authorization_url(self._endpoint("authorization_endpoint"), state=state,
                                                  code_verifier=codeVerifier, nonce=nonce)
        return url

    def fetchTokenByCode(self, code: str, redirectURI: str, codeVerifier: str) -> dict[str, Any]:
        """Tokens for the authorization code the browser came back with (the PKCE verifier proves we asked)."""
        session = self._session()
        session.redirect_uri = redirectURI
        return self._fetch(session, grant_type="authorization_code", code=code, code_verifier=codeVerifier)

    def refresh(self, refreshToken: str) -> dict[str, Any]:
        """New tokens from a refresh token (which the provider may rotate)."""
        return self._fetch(self._session(), grant_type="refresh_token", refresh_token=refreshToken)

    def clientCredentials(self, scope: str | None = None) -> dict[str, Any]:
        """An access token for this (confidential) client itself."""
        params: dict[str, Any] = {"grant_type": "client_credentials"}
        if scope:
            params["scope"] = scope
        return self._fetch(self._session(scope), **params)

    def revoke(self, token: str, hint: str = "refresh_token") -> None:
        """Revoke a token at the provider (RFC 7009)."""
        session = self._session()
        try:
            response = session.revoke_token(self._endpoint("revocation_endpoint"), token, token_type_hint=hint,
                                            timeout=HTTP_TIMEOUT, verify=self.provider.verify)
        except OAuthError as exc:
            raise AuthenticationError(f"{self.provider.name} refused the revocation: {exc.error}") from exc
        if response.status_code != 200:
            raise AuthenticationError(f"{self.provider.name} refused the revocation: HTTP {response.status_code}")
