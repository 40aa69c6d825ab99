"""Users' tokens at identity providers: which DIRAC groups a provider grants, and a refresh that checks it.

Used by the TokenManager (access tokens for components acting for a user) and by the
authorization server (each refresh of its own tokens asks the provider again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dirac.Core.Config import Registry
from dirac.Core.Security.Credentials import validateToken
from dirac.Core.Security.IdProviders import IdProvider
from dirac.Core.Security.OAuth2 import OAuth2Client
from dirac.Core.Utilities.Exceptions import AuthorizationError


def grantedGroups(provider: IdProvider, username: str, claims: dict[str, Any]) -> list[str]:
    """The DIRAC groups ``username`` may act in with a token of ``provider`` carrying ``claims``: those its group
    claims grant when the provider maps groups, else the user's Registry groups."""
    return provider.groupsFromClaims(claims) if provider.mapsGroups else Registry.getGroupsForUser(username)


def refreshGranting(client: OAuth2Client, refreshToken: str, replace: Callable[[str], None], username: str,
                    group: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(token response, access token claims) of a refresh at the provider, a rotated refresh token kept with
    ``replace``; AuthorizationError when the provider no longer grants ``group`` to ``username``."""
    fresh = client.refresh(refreshToken)
    if fresh.get("refresh_token") and fresh["refresh_token"] != refreshToken:
        replace(fresh["refresh_token"])
    claims = validateToken(fresh["access_token"])
    if group not in grantedGroups(client.provider, username, claims):
        raise AuthorizationError(f"identity provider {client.provider.name} does not grant group {group} "
                                 f"to user {username}")
    return fresh, claims
