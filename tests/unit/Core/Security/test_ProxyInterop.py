"""OpenSSL itself accepts our proxies: ``openssl verify`` and a real TLS handshake on loopback."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from dirac.Core.Security.X509 import X509Chain, peerChainFromSSLObject
from dirac.Core.Utilities.Exceptions import SecurityError

USER_DN = "/O=DIRAC-Seed/CN=alice"


def _opensslVerify(grid, proxy: X509Chain, tmp_path: Path) -> subprocess.CompletedProcess:
    leaf = tmp_path / "leaf.pem"
    rest = tmp_path / "untrusted.pem"
    leaf.write_bytes(proxy.leaf.toPEM())
    rest.write_bytes(b"".join(c.toPEM() for c in proxy.certs[1:]))
    return subprocess.run(["openssl", "verify", "-allow_proxy_certs", "-CApath", str(grid.caDir),
                           "-untrusted", str(rest), str(leaf)], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
def test_openssl_verify_accepts_our_proxies(grid, tmp_path):
    proxy = grid.user.generateProxy(3600, group="dirac_user")
    for chain in (proxy, proxy.generateProxy(600), grid.user.generateProxy(600, limited=True)):
        result = _opensslVerify(grid, chain, tmp_path)
        assert result.returncode == 0 and ": OK" in result.stdout, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
def test_openssl_verify_rejects_what_we_reject(grid, craft, tmp_path):
    """The negative cases are real: OpenSSL refuses them too."""
    forged = craft.withSubject(grid.user, "/O=DIRAC-Seed/CN=bob/CN=1234")
    assert _opensslVerify(grid, forged, tmp_path).returncode != 0
    wrongKey = craft.proxy(grid.user, signingKey=grid.user.generateProxy(600).key)
    assert _opensslVerify(grid, wrongKey, tmp_path).returncode != 0
    assert _opensslVerify(grid, grid.user.generateProxy(-3600), tmp_path).returncode != 0


class _TLSServer:
    """A one-connection TLS server on 127.0.0.1 requiring a client certificate (proxies allowed)."""

    def __init__(self, grid):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.verify_flags |= ssl.VERIFY_ALLOW_PROXY_CERTS
        self.context.load_verify_locations(capath=str(grid.caDir))
        self.context.load_cert_chain(str(grid.hostCert), str(grid.hostKey))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.result: dict = {}
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(30)
        try:
            conn, _ = self.listener.accept()
            with self.context.wrap_socket(conn, server_side=True) as tls:
                self.result["fromSocket"] = peerChainFromSSLObject(tls)
                self.result["fromSSLObj"] = peerChainFromSSLObject(tls._sslobj)
                tls.sendall(b"hello")
        except (ssl.SSLError, OSError) as exc:
            self.result["error"] = exc
        finally:
            self.listener.close()

    def stop(self) -> None:
        self.thread.join(30)


def _connect(grid, port: int, proxyFile: Path) -> bytes:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(capath=str(grid.caDir))
    context.load_cert_chain(str(proxyFile))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.recv(5)


def test_tls_server_sees_the_verified_proxy_chain(grid, tmp_path):
    proxy = grid.user.generateProxy(3600, group="dirac_user").generateProxy(1800)
    proxyFile = proxy.dumpToFile(tmp_path / "proxy.pem")
    server = _TLSServer(grid)
    try:
        assert _connect(grid, server.port, proxyFile) == b"hello"
    finally:
        server.stop()
    assert "error" not in server.result, server.result.get("error")
    seen = server.result["fromSocket"]
    # OpenSSL's verified chain: leaf proxy first, down to the trusted CA
    assert seen.certs == proxy.certs + [grid.ca.certificate]
    assert not seen.hasKey and seen.isProxy
    assert seen.identityDN == USER_DN and seen.diracGroup == "dirac_user"
    assert server.result["fromSSLObj"].certs == seen.certs


def test_tls_server_refuses_an_expired_proxy(grid, tmp_path):
    proxyFile = grid.user.generateProxy(-3600).dumpToFile(tmp_path / "expired.pem")
    server = _TLSServer(grid)
    try:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _connect(grid, server.port, proxyFile)
    finally:
        server.stop()
    assert "certificate has expired" in str(server.result.get("error"))


def test_peer_chain_needs_a_verified_chain():
    class NoChain:
        def get_verified_chain(self):
            return []

    with pytest.raises(SecurityError, match="no verified certificate"):
        peerChainFromSSLObject(NoChain())
    with pytest.raises(SecurityError, match="cannot report"):
        peerChainFromSSLObject(object())


def test_peer_chain_accepts_der_bytes_as_python_3_13_returns_them(grid):
    class PublicAPI:
        def get_verified_chain(self):
            return [c.toDER() for c in grid.user.certs]

    assert peerChainFromSSLObject(PublicAPI()).certs == grid.user.certs
