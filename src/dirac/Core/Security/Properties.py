"""The security property names DIRAC groups and hosts carry in the Registry.

Handlers declare their authorization with these names; the CS lists them under
``/Registry/Groups/<group>/Properties`` and ``/Registry/Hosts/<host>/Properties``.
``SecurityProperty`` members are ``str``, so they compare equal to the plain names; the module
also exposes each one under its CS name (``Properties.NormalUser``).
"""

from __future__ import annotations

from enum import StrEnum


class SecurityProperty(StrEnum):
    """A property granted to a group or host."""

    #: a host trusted to act on behalf of users (services, agents)
    TRUSTED_HOST = "TrustedHost"
    #: an ordinary user
    NORMAL_USER = "NormalUser"
    #: may edit the Configuration Service
    CS_ADMINISTRATOR = "CSAdministrator"
    #: group members may see and manage each other's jobs
    JOB_SHARING = "JobSharing"
    #: may administer services (restart, reconfigure, see their state)
    SERVICE_ADMINISTRATOR = "ServiceAdministrator"
    #: may act on everybody's jobs
    JOB_ADMINISTRATOR = "JobAdministrator"
    #: may read monitoring information of all jobs
    JOB_MONITOR = "JobMonitor"
    #: may read accounting data of all groups
    ACCOUNTING_MONITOR = "AccountingMonitor"
    #: a pilot running the jobs of one user
    PILOT = "Pilot"
    #: a pilot matching jobs of any user of its VO
    GENERIC_PILOT = "GenericPilot"
    #: may manage a site's status
    SITE_MANAGER = "SiteManager"
    #: may manage users, groups and VOs in the Registry
    USER_MANAGER = "UserManager"
    #: operations team member
    OPERATOR = "Operator"
    #: may obtain full delegated proxies of other users
    FULL_DELEGATION = "FullDelegation"
    #: may obtain only limited proxies of other users
    LIMITED_DELEGATION = "LimitedDelegation"
    #: may obtain only limited proxies of itself
    PRIVATE_LIMITED_DELEGATION = "PrivateLimitedDelegation"
    #: may manage the stored proxies of all users
    PROXY_MANAGEMENT = "ProxyManagement"
    #: may manage all productions
    PRODUCTION_MANAGEMENT = "ProductionManagement"
    #: may manage the productions of its group
    PRODUCTION_SHARING = "ProductionSharing"
    #: may manage its own productions
    PRODUCTION_USER = "ProductionUser"
    #: may approve production requests
    PPG_AUTHORITY = "PPGAuthority"
    #: may manage the bookkeeping
    BOOKKEEPING_MANAGEMENT = "BookkeepingManagement"
    #: may set notifications and manage alarms
    ALARMS_MANAGEMENT = "AlarmsManagement"
    #: superuser of the file catalog
    FC_MANAGEMENT = "FileCatalogManagement"
    #: may request staging of files from tape
    STAGE_ALLOWED = "StageAllowed"
    #: may submit parametric and bulk jobs
    BULK_SUBMISSION = "BulkSubmission"


# The names as they appear in the CS, for declarations such as ``auth_x = [Properties.NormalUser]``.
TrustedHost = SecurityProperty.TRUSTED_HOST
NormalUser = SecurityProperty.NORMAL_USER
CSAdministrator = SecurityProperty.CS_ADMINISTRATOR
JobSharing = SecurityProperty.JOB_SHARING
ServiceAdministrator = SecurityProperty.SERVICE_ADMINISTRATOR
JobAdministrator = SecurityProperty.JOB_ADMINISTRATOR
JobMonitor = SecurityProperty.JOB_MONITOR
AccountingMonitor = SecurityProperty.ACCOUNTING_MONITOR
Pilot = SecurityProperty.PILOT
GenericPilot = SecurityProperty.GENERIC_PILOT
SiteManager = SecurityProperty.SITE_MANAGER
UserManager = SecurityProperty.USER_MANAGER
Operator = SecurityProperty.OPERATOR
FullDelegation = SecurityProperty.FULL_DELEGATION
LimitedDelegation = SecurityProperty.LIMITED_DELEGATION
PrivateLimitedDelegation = SecurityProperty.PRIVATE_LIMITED_DELEGATION
ProxyManagement = SecurityProperty.PROXY_MANAGEMENT
ProductionManagement = SecurityProperty.PRODUCTION_MANAGEMENT
ProductionSharing = SecurityProperty.PRODUCTION_SHARING
ProductionUser = SecurityProperty.PRODUCTION_USER
PPGAuthority = SecurityProperty.PPG_AUTHORITY
BookkeepingManagement = SecurityProperty.BOOKKEEPING_MANAGEMENT
AlarmsManagement = SecurityProperty.ALARMS_MANAGEMENT
FileCatalogManagement = SecurityProperty.FC_MANAGEMENT
StageAllowed = SecurityProperty.STAGE_ALLOWED
BulkSubmission = SecurityProperty.BULK_SUBMISSION

ALL_PROPERTIES: frozenset[str] = frozenset(p.value for p in SecurityProperty)


def isKnownProperty(name: str) -> bool:
    """True when ``name`` is one of the property names above."""
    return name in ALL_PROPERTIES
