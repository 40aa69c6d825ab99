"""ProxyDB: users' delegated proxies, encrypted at rest (Fernet: AES-128-CBC and HMAC-SHA256).

Tables (DIRAC's names):

* ``ProxyDB_Requests``: open delegation requests; the private key the server made for each,
  encrypted, until the user sends the proxy signed for it (or the request expires);
* ``ProxyDB_CleanProxies``: one proxy per user DN, without DIRAC group (the group is put in each
  proxy handed out), the whole PEM (certificates and private key) encrypted;
* ``ProxyDB_Log``: who obtained or deleted whose proxy, and when.

The key is the ProxyManager's, from a file named in the server's local configuration; the
database alone reveals no private key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, delete, insert, select

from dirac.Core.Base.DB import DB, UTCDateTime, utcnow
from dirac.Core.Security.Keys import loadPrivateKey, privateKeyToPEM
from dirac.Core.Security.X509Chain import X509Chain
from dirac.Core.Security.X509Request import generateProxyRequest
from dirac.Core.Utilities.Exceptions import NotFound, SecurityError

#: seconds a delegation request stays open
REQUEST_LIFETIME = 3600
#: a proxy with less time left than this is not accepted for storage (as DIRAC)
MIN_STORED_LIFETIME = 3600


class ProxyDB(DB):
    """Delegated proxies by user DN, delegation requests and the log of their use."""

    dbName = "Framework/ProxyDB"
    metadata = MetaData()

    requests = Table(
        "ProxyDB_Requests", metadata,
        Column("Id", Integer, primary_key=True, autoincrement=True),
        Column("UserDN", String(255), nullable=False),
        Column("Pem", LargeBinary, nullable=False),  # Fernet ciphertext of the request's private key
        Column("ExpirationTime", UTCDateTime, nullable=False),
    )
    proxies = Table(
        "ProxyDB_CleanProxies", metadata,
        Column("UserDN", String(255), primary_key=True),
        Column("ProxyProvider", String(64), primary_key=True, default="Certificate"),
        Column("UserName", String(64), nullable=False),
        Column("Pem", LargeBinary, nullable=False),  # Fernet ciphertext of the proxy file (key included)
        Column("ExpirationTime", UTCDateTime, nullable=False),
    )
    actions = Table(
        "ProxyDB_Log", metadata,
        Column("ID", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("IssuerDN", String(255), nullable=False),
        Column("IssuerGroup", String(255), nullable=False),
        Column("TargetDN", String(255), nullable=False),
        Column("TargetGroup", String(255), nullable=False),
        Column("Action", String(128), nullable=False),
        Column("Timestamp", UTCDateTime, nullable=False, index=True),
    )

    def __init__(self, url: str | None = None, *, encryptionKey: bytes, createTables: bool = True):
        self._fernet = Fernet(encryptionKey)
        super().__init__(url, createTables=createTables)

    def _decrypt(self, stored: bytes, what: str) -> bytes:
        try:
            return self._fernet.decrypt(stored)
        except InvalidToken as exc:
            raise SecurityError(f"{what} cannot be decrypted: wrong ProxyManager key?") from exc

    # -- delegation ----------------------------------------------------------------------------------
    def generateDelegationRequest(self, userDN: str, bits: int = 2048) -> dict[str, Any]:
        """A new key pair and request for ``userDN``: {"id", "request"} (the key stays here, encrypted)."""
        requestPEM, key = generateProxyRequest(bits)
        values = {"UserDN": userDN, "Pem": self._fernet.encrypt(privateKeyToPEM(key)),
                  "ExpirationTime": utcnow() + timedelta(seconds=REQUEST_LIFETIME)}
        with self.transaction("generateDelegationRequest") as conn:
            conn.execute(delete(self.requests).where(self.requests.c.ExpirationTime < utcnow()))
            requestID = conn.execute(insert(self.requests).values(values)).inserted_primary_key[0]
        return {"id": int(requestID), "request": requestPEM.decode()}

    def completeDelegation(self, requestID: int, userDN: str, username: str, pemChain: str) -> X509Chain:
        """Store the proxy ``userDN`` signed for request ``requestID`` (checked: theirs, full, no group, long enough)."""
        with self.transaction("completeDelegation") as conn:
            row = conn.execute(select(self.requests.c.Pem, self.requests.c.ExpirationTime)
                               .where(self.requests.c.Id == requestID, self.requests.c.UserDN == userDN)
                               .with_for_update()).first()
            if row is None or row.ExpirationTime < utcnow():
                raise NotFound(f"no open delegation request {requestID} for {userDN}")
            key = loadPrivateKey(self._decrypt(row.Pem, f"delegation request {requestID}"))
            certificates = X509Chain.fromPEM(pemChain, source="the delegated proxy").certs
            chain = X509Chain(certificates, key)  # raises when the proxy is not for this request's key
            checkStorable(chain, userDN)
            conn.execute(delete(self.requests).where(self.requests.c.Id == requestID))
        self.storeProxy(userDN, username, chain)
        return chain

    def storeProxy(self, userDN: str, username: str, chain: X509Chain) -> None:
        """Keep ``chain`` (with its key) as the proxy of ``userDN``, replacing a shorter one."""
        checkStorable(chain, userDN)
        values = {"UserDN": userDN, "ProxyProvider": "Certificate", "UserName": username,
                  "Pem": self._fernet.encrypt(chain.toPEM()), "ExpirationTime": chain.notAfter}
        with self.transaction("storeProxy") as conn:
            current = conn.execute(select(self.proxies.c.ExpirationTime)
                                   .where(self.proxies.c.UserDN == userDN).with_for_update()).first()
            if current is not None and current.ExpirationTime > chain.notAfter:
                return  # the one stored lives longer (as DIRAC: the longest proxy is kept)
            conn.execute(self.upsert(self.proxies, values, ["UserName", "Pem", "ExpirationTime"]))

    # -- use -----------------------------------------------------------------------------------------
    def getProxy(self, userDN: str, requiredLifetime: int = 0) -> tuple[X509Chain, int]:
        """(stored proxy of ``userDN`` with its key, seconds left); NotFound when none lives long enough."""
        with self.connection("getProxy") as conn:
            row = conn.execute(select(self.proxies.c.Pem, self.proxies.c.UserName)
                               .where(self.proxies.c.UserDN == userDN)).first()
        if row is None:
            raise NotFound(f"{userDN} has no proxy uploaded")
        chain = X509Chain.fromPEM(self._decrypt(row.Pem, f"the proxy of {row.UserName}"), source="the stored proxy")
        secondsLeft = chain.remainingSeconds
        if secondsLeft <= 0:
            self.deleteProxy(userDN)
            raise NotFound(f"the uploaded proxy of {row.UserName} has expired")
        if requiredLifetime and secondsLeft < requiredLifetime:
            raise NotFound(f"the uploaded proxy of {row.UserName} expires in {secondsLeft} s, "
                           f"less than the {requiredLifetime} s required")
        return chain, secondsLeft

    def getProxyStrength(self, userDN: str) -> int:
        """Bits of the stored proxy's key."""
        chain, _ = self.getProxy(userDN)
        return chain.leaf.publicKey.size() * 8

    def deleteProxy(self, userDN: str) -> bool:
        """Forget the proxy of ``userDN``; whether there was one."""
        with self.transaction("deleteProxy") as conn:
            return bool(conn.execute(delete(self.proxies).where(self.proxies.c.UserDN == userDN)).rowcount)

    def getProxiesInfo(self, usernames: list[str] | None = None, validSeconds: int = 0) -> list[dict[str, Any]]:
        """UserName, UserDN, ProxyProvider, ExpirationTime of the stored proxies (never the proxies)."""
        stmt = select(self.proxies.c.UserName, self.proxies.c.UserDN, self.proxies.c.ProxyProvider,
                      self.proxies.c.ExpirationTime)
        if usernames is not None:
            stmt = stmt.where(self.proxies.c.UserName.in_(usernames))
        if validSeconds:
            stmt = stmt.where(self.proxies.c.ExpirationTime > utcnow() + timedelta(seconds=validSeconds))
        with self.connection("getProxiesInfo") as conn:
            return [dict(row._mapping) for row in conn.execute(stmt.order_by(self.proxies.c.UserName))]

    def getExpiringProxies(self, withinSeconds: int) -> list[dict[str, Any]]:
        """The stored proxies still valid that expire within ``withinSeconds``, soonest first."""
        now = utcnow()
        stmt = (select(self.proxies.c.UserName, self.proxies.c.UserDN, self.proxies.c.ExpirationTime)
                .where(self.proxies.c.ExpirationTime > now,
                       self.proxies.c.ExpirationTime <= now + timedelta(seconds=withinSeconds))
                .order_by(self.proxies.c.ExpirationTime))
        with self.connection("getExpiringProxies") as conn:
            return [{**row._mapping, "SecondsLeft": int((row.ExpirationTime - now).total_seconds())}
                    for row in conn.execute(stmt)]

    def purgeExpired(self) -> int:
        """Delete expired proxies and delegation requests; how many proxies went."""
        with self.transaction("purgeExpired") as conn:
            conn.execute(delete(self.requests).where(self.requests.c.ExpirationTime < utcnow()))
            return conn.execute(delete(self.proxies).where(self.proxies.c.ExpirationTime < utcnow())).rowcount

    # -- log -----------------------------------------------------------------------------------------
    def logAction(self, action: str, issuerDN: str, issuerGroup: str, targetDN: str, targetGroup: str) -> None:
        """Record who did ``action`` on whose proxy."""
        with self.transaction("logAction") as conn:
            conn.execute(insert(self.actions).values(Action=action, IssuerDN=issuerDN or "", IssuerGroup=issuerGroup or "",
                                                 TargetDN=targetDN, TargetGroup=targetGroup or "",
                                                 Timestamp=utcnow()))

    def getLogs(self, targetDN: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The latest log records, newest first."""
        stmt = select(self.actions).order_by(self.actions.c.ID.desc()).limit(limit)
        if targetDN:
            stmt = stmt.where(self.actions.c.TargetDN == targetDN)
        with self.connection("getLogs") as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]


def checkStorable(chain: X509Chain, userDN: str) -> None:
    """A proxy may be stored when it is a full proxy of ``userDN``, without DIRAC group, with its key."""
    if not chain.hasKey or not chain.isProxy:
        raise SecurityError("only proxies with their private key can be stored")
    if chain.identityDN != userDN:
        raise SecurityError(f"the proxy is of {chain.identityDN}, not of {userDN}")
    if chain.isLimitedProxy:
        raise SecurityError("limited proxies are not allowed to be stored")
    if chain.diracGroup:
        raise SecurityError("proxies with a DIRAC group extension are not allowed to be stored")
    if chain.remainingSeconds < MIN_STORED_LIFETIME:
        raise SecurityError(f"cannot store a proxy with {chain.remainingSeconds} s left "
                            f"(at least {MIN_STORED_LIFETIME} s)")
