"""A one-box instance: CA, certificates, central configuration and client set-up in one folder.

Layout of an instance directory::

    ca/                           the instance's certification authority (key kept here)
    etc/grid-security/            hostcert.pem, hostkey.pem, pilotcert.pem, pilotkey.pem (the credential
                                  pilot proxies are made from), certificates/ (CA dir, hashed)
    etc/cs/Master.cfg             the central configuration (served by Configuration/Server)
    etc/dirac.cfg                 local configuration for clients: where the CS and CAs are
    etc/server.cfg                extra local configuration for the server process
    etc/proxymanager.key          the ProxyManager's key (Fernet) encrypting the stored proxies (0600)
    etc/tokenmanager.key          the TokenManager's key (Fernet) encrypting users' refresh tokens (0600)
    etc/auth-signing-key.pem      the authorization server's (https://<host>:<port>/auth) token signing key (0600)
    etc/webapp-client.secret      the web portal's client secret at the authorization server (0600)
    user/usercert.pem, userkey.pem, proxy.pem    the local administrator's credentials
    db/ log/ run/                 SQLite databases, logs, pid file
    pilots/                       working directories of the pilots of the one-box site
    pilot-files/                  served at https://<host>:<port>/pilot/<file> (dirac-server publish-client)
    bashrc                        environment for clients (source it)
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from diraccfg import CFG

from dirac.Core.Base import Components
from dirac.Core.Config.ConfigurationData import setOption
from dirac.Core.Security import Properties
from dirac.Core.Security.CA import CertificateAuthority
from dirac.Core.Security.IdProviders import AUTHORIZATION
from dirac.Core.Security.Keys import writePrivateFile
from dirac.Core.Security.X509 import X509Chain
from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.FrameworkSystem.DB.ProxyDB import ProxyDB

ADMIN_PROPERTIES = [
    Properties.NormalUser, Properties.CSAdministrator, Properties.ServiceAdministrator,
    Properties.JobAdministrator, Properties.Operator, Properties.FullDelegation, Properties.ProxyManagement,
    Properties.SiteManager, Properties.FileCatalogManagement, Properties.ProductionManagement,
]
ONE_BOX_SITE = "DIRAC.OneBox.local"
ONE_BOX_CE = "onebox.local"
ONE_BOX_SE = "OneBox-SE"
ONE_BOX_FAILOVER_SE = "OneBox-Failover"
#: the web portal's sign-in through the server's own authorization server
PORTAL_LOGIN = "/WebApp/Login/DIRAC"
HOST_PROPERTIES = [
    Properties.TrustedHost, Properties.CSAdministrator, Properties.JobAdministrator, Properties.Operator,
    Properties.FullDelegation, Properties.ProxyManagement, Properties.SiteManager, Properties.GenericPilot,
    Properties.FileCatalogManagement,  # the optimizers resolve every job's input data, whoever owns it
]


@dataclass
class Instance:
    """Paths of an instance directory."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()

    @property
    def caDir(self) -> Path:
        return self.root / "ca"

    @property
    def certificatesDir(self) -> Path:
        return self.root / "etc" / "grid-security" / "certificates"

    @property
    def hostCert(self) -> Path:
        return self.root / "etc" / "grid-security" / "hostcert.pem"

    @property
    def hostKey(self) -> Path:
        return self.root / "etc" / "grid-security" / "hostkey.pem"

    @property
    def masterCFG(self) -> Path:
        return self.root / "etc" / "cs" / "Master.cfg"

    @property
    def clientCFG(self) -> Path:
        return self.root / "etc" / "dirac.cfg"

    @property
    def serverCFG(self) -> Path:
        return self.root / "etc" / "server.cfg"

    @property
    def proxyManagerKey(self) -> Path:
        return self.root / "etc" / "proxymanager.key"

    @property
    def tokenManagerKey(self) -> Path:
        return self.root / "etc" / "tokenmanager.key"

    @property
    def authSigningKey(self) -> Path:
        return self.root / "etc" / "auth-signing-key.pem"

    @property
    def webAppClientSecret(self) -> Path:
        return self.root / "etc" / "webapp-client.secret"

    @property
    def pilotCert(self) -> Path:
        return self.root / "etc" / "grid-security" / "pilotcert.pem"

    @property
    def pilotKey(self) -> Path:
        return self.root / "etc" / "grid-security" / "pilotkey.pem"

    @property
    def pilotsDir(self) -> Path:
        return self.root / "pilots"

    @property
    def pilotFilesDir(self) -> Path:
        return self.root / "pilot-files"

    @property
    def userCert(self) -> Path:
        return self.root / "user" / "usercert.pem"

    @property
    def userKey(self) -> Path:
        return self.root / "user" / "userkey.pem"

    @property
    def proxy(self) -> Path:
        return self.root / "user" / "proxy.pem"

    @property
    def pidFile(self) -> Path:
        return self.root / "run" / "server.pid"

    @property
    def logFile(self) -> Path:
        return self.root / "log" / "server.log"

    @property
    def bashrc(self) -> Path:
        return self.root / "bashrc"

    def exists(self) -> bool:
        return self.masterCFG.exists() and self.clientCFG.exists()

    def environment(self) -> dict[str, str]:
        """What a client process needs in its environment to use this instance."""
        return {"DIRACSYSCONFIG": str(self.clientCFG), "X509_USER_PROXY": str(self.proxy),
                "X509_CERT_DIR": str(self.certificatesDir)}


def initInstance(root: str | Path, host: str = "127.0.0.1", port: int = 8443, vo: str = "dirac",
                 admin: str = "admin", force: bool = False, proxyHours: int = 24 * 7) -> Instance:
    """Create an instance directory ready for ``dirac-server start``."""
    instance = Instance(Path(root))
    if instance.exists() and not force:
        raise ConfigurationError(f"{instance.root} already holds an instance (use --force to recreate it)")
    if force and instance.root.exists():
        shutil.rmtree(instance.root)
    for sub in ("etc/cs", "user", "db", "log", "run", "pilots", "pilot-files"):
        (instance.root / sub).mkdir(parents=True, exist_ok=True)

    ca = CertificateAuthority(instance.caDir)
    ca.create(subject=f"/O=DIRAC-Seed/OU={vo}/CN=DIRAC Seed CA {socket.gethostname()}")
    ca.installInCertificatesDir(instance.certificatesDir)
    altNames = sorted({"localhost", "127.0.0.1", host, socket.gethostname()})
    hostCert, hostKey = ca.issueHostCertificate(host if not host[0].isdigit() else "localhost", altNames=altNames)
    instance.hostCert.write_bytes(hostCert)
    writePrivateFile(instance.hostKey, hostKey)
    userCert, userKey = ca.issueUserCertificate(f"/O=DIRAC-Seed/OU={vo}/CN={admin}")
    instance.userCert.write_bytes(userCert)
    writePrivateFile(instance.userKey, userKey)

    pilotCert, pilotKey = ca.issueUserCertificate(f"/O=DIRAC-Seed/OU={vo}/CN=pilot")
    instance.pilotCert.write_bytes(pilotCert)
    writePrivateFile(instance.pilotKey, pilotKey)

    adminGroup = f"{vo}_admin"
    chain = X509Chain.fromPEM(userCert + userKey)
    chain.generateProxy(proxyHours * 3600, group=adminGroup).dumpToFile(str(instance.proxy))

    hostDN = X509Chain.fromPEM(hostCert + hostKey).identityDN
    pilotDN = X509Chain.fromPEM(pilotCert + pilotKey).identityDN
    master = buildMasterConfiguration(instance, host, port, vo, admin, chain.identityDN, hostDN, pilotDN)
    master.writeToFile(str(instance.masterCFG))
    writeLocalConfiguration(instance, host, port)
    createTokenSecrets(instance)
    uploadAdministratorProxy(instance, admin, chain)
    instance.bashrc.write_text("".join(f"export {k}={v}\n" for k, v in instance.environment().items()))
    return instance


def buildMasterConfiguration(instance: Instance, host: str, port: int, vo: str, admin: str, adminDN: str,
                             hostDN: str, pilotDN: str) -> CFG:
    """The central configuration of a new instance: Registry, every system's defaults, URLs, the local site."""
    cfg = CFG()
    setOption(cfg, "/DIRAC/VirtualOrganization", vo)
    setOption(cfg, "/DIRAC/Configuration/Name", "OneBox")
    registry = {
        "DefaultGroup": f"{vo}_user",
        f"VO/{vo}/VOAdmin": admin,
        f"Users/{admin}/DN": adminDN,
        f"Users/{admin}/Email": f"{admin}@localhost",
        f"Groups/{vo}_user/Users": admin,
        f"Groups/{vo}_user/Properties": Properties.NormalUser,
        f"Groups/{vo}_user/VO": vo,
        f"Groups/{vo}_admin/Users": admin,
        f"Groups/{vo}_admin/Properties": ", ".join(ADMIN_PROPERTIES),
        f"Groups/{vo}_admin/VO": vo,
        "Users/pilot/DN": pilotDN,
        f"Groups/{vo}_pilot/Users": f"{admin}, pilot",
        # LimitedDelegation: pilots fetch the (limited) proxy of each job's owner from the ProxyManager
        f"Groups/{vo}_pilot/Properties": f"{Properties.GenericPilot}, {Properties.LimitedDelegation}",
        f"Groups/{vo}_pilot/VO": vo,
        f"Hosts/{host}/DN": hostDN,
        f"Hosts/{host}/Properties": ", ".join(HOST_PROPERTIES),
    }
    for path, value in registry.items():
        setOption(cfg, f"/Registry/{path}", value)
    systems = CFG()
    for system in sorted({name.split("/")[0] for name in Components.listServices() + Components.listAgents()}):
        systems.createNewSection(system, contents=CFG().loadFromBuffer(Components.configTemplate(system)))
    cfg = cfg.mergeWith(_wrap("Systems", systems))
    for name in Components.listServices():
        system, service = name.split("/")
        setOption(cfg, f"/Systems/{system}/URLs/{service}", f"https://{host}:{port}/{name}")
    for path, value in {**oneBoxSite(instance), **oneBoxStorage(host, port), **authorizationServer(host, port)}.items():
        setOption(cfg, path, value)
    return cfg


def authorizationServer(host: str, port: int) -> dict[str, str]:
    """CS options of the OAuth2 authorization server at https://<host>:<port>/auth and its web portal client
    (its secret is in the server's local configuration, see createTokenSecrets)."""
    base = f"https://{host}:{port}"
    client = f"{AUTHORIZATION}/Clients/DIRACWeb"
    return {f"{AUTHORIZATION}/issuer": f"{base}/auth",
            f"{client}/client_id": "DIRAC_Web", f"{client}/redirect_uri": f"{base}/DIRAC/login/callback",
            f"{client}/grant_types": "authorization_code, refresh_token", f"{client}/response_types": "code",
            # the portal signs users in through it (the provider it sends them to: /Resources/IdProviders)
            f"{PORTAL_LOGIN}/Issuer": f"{base}/auth", f"{PORTAL_LOGIN}/ClientID": "DIRAC_Web"}


def createTokenSecrets(instance: Instance) -> None:
    """The TokenManager's key, the authorization server's signing key and the web portal's client secret, each in a
    0600 file named in the server's local configuration."""
    from dirac.Core.Security.TokenSigning import SIGNING_KEY_FILE, createSigningKeyFile

    writePrivateFile(instance.tokenManagerKey, Fernet.generate_key() + b"\n")
    createSigningKeyFile(instance.authSigningKey)
    writePrivateFile(instance.webAppClientSecret, secrets.token_urlsafe(32).encode() + b"\n")
    server = CFG().loadFromFile(str(instance.serverCFG))
    setOption(server, "/Systems/Framework/Services/TokenManager/EncryptionKeyFile", str(instance.tokenManagerKey))
    setOption(server, SIGNING_KEY_FILE, str(instance.authSigningKey))
    setOption(server, f"{AUTHORIZATION}/Clients/DIRACWeb/client_secret_file", str(instance.webAppClientSecret))
    setOption(server, f"{PORTAL_LOGIN}/ClientSecretFile", str(instance.webAppClientSecret))
    server.writeToFile(str(instance.serverCFG))


def oneBoxStorage(host: str, port: int) -> dict[str, str]:
    """CS options of the one-box Storage Elements: OneBox-SE and OneBox-Failover, two space tokens of the
    DataManagement/StorageElement service (files in <instance>/storage/Disk and .../Failover), also the
    SE groups SE-USER and Tier1-Failover."""
    options = {f"/Resources/Sites/DIRAC/{ONE_BOX_SITE}/SE": f"{ONE_BOX_SE}, {ONE_BOX_FAILOVER_SE}",
               # DIRAC's SE groups for user jobs' OutputData: the default destination, and the failover
               "/Resources/StorageElementGroups/SE-USER": ONE_BOX_SE,
               "/Resources/StorageElementGroups/Tier1-Failover": ONE_BOX_FAILOVER_SE}
    for se, token in ((ONE_BOX_SE, "Disk"), (ONE_BOX_FAILOVER_SE, "Failover")):
        section = f"/Resources/StorageElements/{se}"
        options.update({f"{section}/BackendType": "DISK", f"{section}/DIP/Protocol": "https",
                        f"{section}/DIP/Host": host, f"{section}/DIP/Port": str(port),
                        f"{section}/DIP/Path": "/DataManagement/StorageElement", f"{section}/DIP/SpaceToken": token})
    return options


def oneBoxSite(instance: Instance) -> dict[str, str]:
    """CS options of the one-box site: pilots as local processes, one slot per core."""
    slots = max(2, os.cpu_count() or 1)
    site = f"/Resources/Sites/DIRAC/{ONE_BOX_SITE}"
    ce = f"{site}/CEs/{ONE_BOX_CE}"
    director = "/Systems/WorkloadManagement/Agents/SiteDirector"
    return {
        f"{site}/Name": "OneBox",
        f"{site}/CE": ONE_BOX_CE,
        f"{ce}/CEType": "Local",
        f"{ce}/WorkingDirectory": str(instance.pilotsDir),
        f"{ce}/Queues/default/CPUTime": "86400",
        f"{ce}/Queues/default/NumberOfProcessors": "1",
        f"{ce}/Queues/default/MaxTotalJobs": str(slots),
        f"{ce}/Queues/default/MaxWaitingJobs": str(slots),
        f"{director}/PollingTime": "5",
        # a quick CPU estimate instead of DB12's ten seconds: every one-box pilot runs on this same machine
        f"{director}/PilotBenchmark": "builtin",
    }


def uploadAdministratorProxy(instance: Instance, admin: str, certificate: X509Chain) -> None:
    """Create the ProxyManager's key and store a proxy of the administrator for the certificate's lifetime in the
    instance's SQLite ProxyDB, so that pilots run the administrator's jobs with the administrator's proxy."""
    key = Fernet.generate_key()
    writePrivateFile(instance.proxyManagerKey, key + b"\n")
    proxyDB = ProxyDB(f"sqlite:///{instance.root / 'db' / 'ProxyDB.sqlite'}", encryptionKey=key)
    try:
        proxyDB.storeProxy(certificate.identityDN, admin, certificate.generateProxy(certificate.remainingSeconds - 60))
    finally:
        proxyDB.close()


def _wrap(name: str, contents: CFG) -> CFG:
    """A CFG holding ``contents`` as the section ``name``."""
    outer = CFG()
    outer.createNewSection(name, contents=contents)
    return outer


def writeLocalConfiguration(instance: Instance, host: str, port: int) -> None:
    """etc/dirac.cfg for clients and etc/server.cfg for the server process."""
    client = CFG()
    setOption(client, "/DIRAC/Configuration/Servers", f"https://{host}:{port}/Configuration/Server")
    setOption(client, "/DIRAC/Configuration/RefreshTime", "60")
    setOption(client, "/DIRAC/Security/CALocation", str(instance.certificatesDir))
    setOption(client, "/LocalInstallation/InstancePath", str(instance.root))
    client.writeToFile(str(instance.clientCFG))
    server = CFG()
    setOption(server, "/DIRAC/Security/CertFile", str(instance.hostCert))
    setOption(server, "/DIRAC/Security/KeyFile", str(instance.hostKey))
    setOption(server, "/DIRAC/Security/UseServerCertificate", "yes")
    setOption(server, "/DIRAC/Server/Host", host)
    setOption(server, "/DIRAC/Server/Port", str(port))
    setOption(server, "/DIRAC/Server/PilotFilesDirectory", str(instance.pilotFilesDir))
    setOption(server, "/Systems/Configuration/Services/Server/MasterCFG", str(instance.masterCFG))
    setOption(server, "/Systems/Framework/Services/ProxyManager/EncryptionKeyFile", str(instance.proxyManagerKey))
    setOption(server, "/Systems/WorkloadManagement/Agents/SiteDirector/PilotCertificate", str(instance.pilotCert))
    setOption(server, "/Systems/WorkloadManagement/Agents/SiteDirector/PilotKey", str(instance.pilotKey))
    server.writeToFile(str(instance.serverCFG))
