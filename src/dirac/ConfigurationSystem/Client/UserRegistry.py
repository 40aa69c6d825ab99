"""The dynamic user registry: users an identity provider vouches for join the Registry at their first call.

For an identity provider with ``RegisterUsers = yes`` (``/Resources/IdProviders/<Name>``), a token
whose subject no ``/Registry/Users/<name>/ID`` names is not refused: when the provider grants the
subject at least one DIRAC group (its group claims), the server adds the user to the central
configuration with its own host certificate, as an agent would:

- ``/Registry/Users/<name>`` with ``ID`` (the subject), ``IdProvider`` and ``Email`` when the token
  has one;
- ``<name>`` in the ``Users`` of every group the provider grants.

``<name>`` is the token's ``UsernameClaim`` (default ``preferred_username``), lower-cased and
reduced to letters, digits, ``_``, ``.`` and ``-`` (else ``user-<subject>``); when another subject
has that name, ``<name>-2``, ``<name>-3``... A process remembers whom it registered until its copy
of the configuration has them, and a commit that lost a race with another is tried again.
Group membership keeps following the provider: each call is authorised by the groups its token
grants, so a group the provider withdraws is refused at once, whatever the Registry says.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Security.IdProviders import IdProvider
from dirac.Core.Utilities.Exceptions import AuthenticationError, AuthorizationError

log = logging.getLogger("dirac.UserRegistry")
USERS = "/Registry/Users"
COMMIT_ATTEMPTS = 3
_registered: dict[tuple[str, str], str] = {}  # (issuer, subject) -> username
_lock = threading.Lock()


def baseUsername(provider: IdProvider, claims: dict[str, Any]) -> str:
    """The name a new user gets from the token's claims, before making it unique."""
    wanted = claims.get(provider.usernameClaim)
    name = re.sub(r"[^a-z0-9_.-]+", "", str(wanted).lower()) if isinstance(wanted, str) else ""
    if not name or not name[0].isalpha():
        name = "user-" + re.sub(r"[^a-z0-9]+", "", str(claims["sub"]).lower())[:16]
    return name[:64]


class UnregisteredSubject(AuthenticationError):
    """A token subject its provider may register: ``register()`` adds it (blocking: a CS commit)."""

    def __init__(self, provider: IdProvider, claims: dict[str, Any]):
        super().__init__(f"token subject {claims['sub']} (issuer {claims['iss']}) is not registered yet")
        self.provider, self.claims = provider, claims

    def register(self) -> str:
        return registerUser(self.provider, self.claims)


def registeredUsername(claims: dict[str, Any]) -> str | None:
    """The name this process registered the token's subject under, if it did."""
    return _registered.get((str(claims["iss"]), str(claims["sub"])))


def registerUser(provider: IdProvider, claims: dict[str, Any]) -> str:
    """The username of the token's subject, added to the Registry now if it is not there yet."""
    from dirac.ConfigurationSystem.Client.CSAPI import CSAPI

    subject, issuer = str(claims["sub"]), str(claims["iss"])
    with _lock:
        if (issuer, subject) in _registered:
            return _registered[(issuer, subject)]
        granted = provider.groupsFromClaims(claims)
        if not granted:
            raise AuthorizationError(f"identity provider {provider.name} grants subject {subject} no DIRAC group: "
                                     "not registered")
        problem = ""
        for _ in range(COMMIT_ATTEMPTS):
            api = CSAPI()
            started = api.initialize()
            if not started["OK"]:
                raise AuthenticationError(f"subject {subject} cannot be registered: {started['Message']}")
            users = api.listSections(USERS)
            known = next((user for user in users if api.getOption(f"{USERS}/{user}/ID") == subject), None)
            if known is not None:  # registered by another server process meanwhile
                _registered[(issuer, subject)] = known
                return known
            name = base = baseUsername(provider, claims)
            suffix = 1
            while name in users:
                suffix += 1
                name = f"{base}-{suffix}"
            api.setOption(f"{USERS}/{name}/ID", subject)
            api.setOption(f"{USERS}/{name}/IdProvider", provider.name)
            if isinstance(claims.get("email"), str):
                api.setOption(f"{USERS}/{name}/Email", claims["email"])
            for group in granted:
                members = toList(api.getOption(f"/Registry/Groups/{group}/Users", "") or "")
                api.setOption(f"/Registry/Groups/{group}/Users", ", ".join([*members, name]))
            committed = api.commit()
            if committed["OK"]:
                _registered[(issuer, subject)] = name
                log.info("registered user %s (subject %s of %s) in group(s) %s", name, subject, provider.name,
                         ", ".join(granted))
                return name
            problem = committed["Message"]
        raise AuthenticationError(f"subject {subject} cannot be registered: {problem}")
