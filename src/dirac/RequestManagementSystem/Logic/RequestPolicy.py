"""Who may do what with which request.

* ``TrustedHost`` (agents, services) and ``Operator``: see, cancel, reset and delete every request;
  only they may claim requests for execution (``getRequest``, ``getBulkRequests``).
* a user: sees, cancels and resets the requests it owns (its user name, whatever the group), deletes
  them once they are over.
* putting a request for someone else (its ``Owner``/``OwnerGroup`` not the caller's): only with
  ``FullDelegation``, ``LimitedDelegation`` (pilots running users' jobs) or ``TrustedHost``, as in DIRAC;
  the owner and the group must be in the Registry (the agent gets the owner's credentials in that group
  from the ProxyManager or the TokenManager, which check the membership). A request without owner gets
  the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dirac.Core.Config import Registry, gConfig
from dirac.Core.Security import Properties
from dirac.Core.Utilities.Exceptions import AuthorizationError, InvalidArgument, NotFound
from dirac.RequestManagementSystem.Client.Request import Request

MANAGERS = (Properties.TrustedHost, Properties.Operator)
DELEGATORS = (Properties.FullDelegation, Properties.LimitedDelegation, Properties.TrustedHost)


class RequestPolicy:
    """The rights of one caller over requests (its credentials as the server sees them)."""

    def __init__(self, credDict: Mapping[str, Any]):
        self.user = credDict.get("username") or ""
        self.group = credDict.get("group") or ""
        self.properties = set(credDict.get("properties") or [])
        self.who = self.user or credDict.get("hostname") or credDict.get("DN") or "anonymous"

    @property
    def seesAll(self) -> bool:
        return bool(self.properties & set(MANAGERS))

    @property
    def ownerFilter(self) -> str | None:
        """The owner a selection is restricted to (None: every request)."""
        return None if self.seesAll else self.user

    def mayAct(self, owner: str) -> bool:
        return self.seesAll or (bool(self.user) and owner == self.user)

    def check(self, owners: Mapping[int, Mapping[str, Any]], requestID: int, action: str) -> Mapping[str, Any]:
        """The stored owner row of ``requestID`` ({Owner, OwnerGroup, Status, JobID}); NotFound, or
        AuthorizationError when the caller may not ``action`` it."""
        row = owners.get(requestID)
        if row is None:
            raise NotFound(f"request {requestID} does not exist")
        if not self.mayAct(row["Owner"]):
            raise AuthorizationError(f"{self.who} may not {action} request {requestID} of {row['Owner']}")
        return row

    def setOwner(self, request: Request) -> None:
        """Give ``request`` the caller as owner when it names none; else check the caller may act for its owner."""
        if not request.Owner and request.OwnerDN:  # a DIRAC v8 client
            request.Owner = Registry.getUsernameForDN(request.OwnerDN) or ""
            if not request.Owner:
                raise InvalidArgument(f"request {request.RequestName}: no registered user has DN {request.OwnerDN}")
        if not request.Owner or not request.OwnerGroup:
            if not self.user:
                raise InvalidArgument(f"request {request.RequestName}: {self.who} is no user: name the request's "
                                      "Owner and OwnerGroup")
            request.Owner, request.OwnerGroup = self.user, self.group
            return
        if (request.Owner, request.OwnerGroup) == (self.user, self.group):
            return
        if not self.properties & set(DELEGATORS):
            raise AuthorizationError(f"{self.who} (group {self.group}) may not put requests for "
                                     f"{request.Owner}@{request.OwnerGroup}: credentials in the request not allowed")
        # membership is the ProxyManager's or TokenManager's to check when the agent asks for the owner's
        # credentials (a user signed in with a token gets groups from its identity provider, not the Registry)
        if not gConfig.isSection(f"/Registry/Users/{request.Owner}"):
            raise InvalidArgument(f"request {request.RequestName}: no user {request.Owner} in the Registry")
        if request.OwnerGroup not in Registry.getAllGroups():
            raise InvalidArgument(f"request {request.RequestName}: no group {request.OwnerGroup} in the Registry")
