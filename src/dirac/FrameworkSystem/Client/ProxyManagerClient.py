"""Client of Framework/ProxyManager: upload (delegate) a long proxy, download short proxies of users.

Every method returns DIRAC's S_OK/S_ERROR. Downloads make their key pair here and send only a
certificate request; uploads sign the server's request with the user's certificate: no private
key ever travels.
"""

from __future__ import annotations

from typing import Any

from dirac.Core.Security.X509Chain import X509Chain
from dirac.Core.Security.X509Request import generateProxyRequest
from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.Exceptions import SecurityError
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK

SERVICE = "Framework/ProxyManager"
#: lifetime of an uploaded proxy unless told otherwise (DIRAC's ProxyUpload default: one month)
DEFAULT_UPLOAD_LIFETIME = 30 * 86400


class ProxyManagerClient(RPCClient):
    """Framework/ProxyManager's exported methods, plus uploadProxy and downloadProxy."""

    def __init__(self, **kwargs: Any):
        super().__init__(kwargs.pop("url", None) or SERVICE, **kwargs)

    def uploadProxy(self, certificate: X509Chain, lifetime: int = DEFAULT_UPLOAD_LIFETIME) -> dict[str, Any]:
        """Delegate a proxy of ``certificate`` (a certificate or proxy chain with its key, no DIRAC group needed)."""
        if not certificate.hasKey:
            return S_ERROR("cannot upload a proxy: the private key is not loaded")
        request = self.requestDelegationUpload()
        if not request["OK"]:
            return request
        lifetime = min(lifetime, certificate.remainingSeconds - 60)
        try:
            delegated = certificate.generateChainFromRequest(request["Value"]["request"], lifetime)
        except SecurityError as exc:
            return S_ERROR(f"cannot sign the delegation request: {exc}")
        if delegated.diracGroup:  # a proxy carrying a group would be refused: sign from the certificate
            return S_ERROR("upload from the user certificate, not from a proxy carrying a DIRAC group")
        return self.completeDelegationUpload(request["Value"]["id"], delegated.certificatesPEM().decode())

    def downloadProxy(self, userDN: str, userGroup: str, limited: bool = False,
                      requiredTimeLeft: int = 1200) -> dict[str, Any]:
        """S_OK(X509Chain with its key): a proxy of ``userDN`` in ``userGroup`` living ``requiredTimeLeft`` s."""
        strength = self.getStoredProxyStrength(userDN, userGroup, None)
        requestPEM, key = generateProxyRequest(strength["Value"] if strength["OK"] else 2048, limited)
        answer = self.getProxy(userDN, userGroup, requestPEM.decode(), int(requiredTimeLeft))
        if not answer["OK"]:
            return answer
        try:
            chain = X509Chain(X509Chain.fromPEM(answer["Value"], source="the ProxyManager's answer").certs, key)
        except SecurityError as exc:
            return S_ERROR(f"the ProxyManager's proxy is unusable: {exc}")
        return S_OK(chain)

    def getPayloadProxyFromDIRACGroup(self, userDN: str, userGroup: str, requiredTimeLeft: int) -> dict[str, Any]:
        """S_OK(X509Chain): the limited proxy a pilot runs a job of ``userDN`` in ``userGroup`` with."""
        return self.downloadProxy(userDN, userGroup, limited=True, requiredTimeLeft=requiredTimeLeft)
