"""The HTTPS RPC framework against a real server process: authentication, authorization,
argument checking, errors, streaming and robustness."""

from __future__ import annotations

import datetime
import errno
import hashlib
import socket
import ssl
import threading

import pytest
import requests

from dirac.Core.Security.CA import CertificateAuthority
from dirac.Core.Security.X509 import X509Chain
from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities import JEncode


def rawPost(grid, fields, cert=None, **kwargs) -> requests.Response:
    return requests.post(grid.url("Test/Dummy"), data=fields, cert=cert,
                         verify=str(grid.instance.certificatesDir), timeout=30, **kwargs)


# -- authentication --------------------------------------------------------------------------

def test_authenticated_call_returns_s_ok(grid):
    result = grid.client().add(2, 3)
    assert result["OK"] is True
    assert result["Value"] == 5


def test_whoami_maps_dn_to_user_group_and_properties(grid):
    who = grid.client(proxy="admin").whoami()
    assert who["OK"], who
    assert who["Value"]["username"] == "admin"
    assert who["Value"]["group"] == "dirac_admin"
    assert "CSAdministrator" in who["Value"]["properties"]
    assert who["Value"]["DN"] == "/O=DIRAC-Seed/OU=dirac/CN=admin"


def test_call_without_certificate_or_token_is_refused(grid):
    response = rawPost(grid, {"method": "add", "args": "[1, 2]"})
    assert response.status_code == 401
    answer = JEncode.decode(response.text)[0]
    assert answer["OK"] is False
    assert "no client certificate" in answer["Message"]


def test_expired_proxy_is_refused_by_client_and_server(grid, tmp_path):
    cert, key = grid.ca.issueUserCertificate("/O=DIRAC-Seed/OU=dirac/CN=admin")
    expired = tmp_path / "expired.pem"
    X509Chain.fromPEM(cert + key).generateProxy(-3600, group="dirac_user").dumpToFile(str(expired))
    result = RPCClient("Test/Dummy", proxyLocation=str(expired), useCertificates=False).add(1, 1)
    assert not result["OK"]
    assert "expired" in result["Message"]
    with pytest.raises(requests.exceptions.SSLError):
        rawPost(grid, {"method": "add", "args": "[1, 1]"}, cert=str(expired))


def test_proxy_from_unknown_ca_is_refused(grid, tmp_path):
    rogue = CertificateAuthority(tmp_path / "rogue-ca")
    rogue.create(subject="/O=Rogue/CN=Rogue CA")
    cert, key = rogue.issueUserCertificate("/O=DIRAC-Seed/OU=dirac/CN=admin")
    proxy = tmp_path / "rogue-proxy.pem"
    X509Chain.fromPEM(cert + key).generateProxy(3600, group="dirac_admin").dumpToFile(str(proxy))
    result = RPCClient("Test/Dummy", proxyLocation=str(proxy), useCertificates=False).add(1, 1)
    assert not result["OK"]
    assert "TLS" in result["Message"]


def test_group_the_user_is_not_in_is_refused(grid, tmp_path):
    proxy = grid.makeProxy("bob-as-admin", "/O=DIRAC-Seed/OU=dirac/CN=bob", "dirac_admin")
    result = RPCClient("Test/Dummy", proxyLocation=str(proxy), useCertificates=False).add(1, 1)
    assert not result["OK"]
    assert "not a member of group dirac_admin" in result["Message"]


def test_unregistered_dn_is_refused(grid):
    proxy = grid.makeProxy("stranger", "/O=DIRAC-Seed/OU=dirac/CN=stranger", None)
    result = RPCClient("Test/Dummy", proxyLocation=str(proxy), useCertificates=False).add(1, 1)
    assert not result["OK"]
    assert "CN=stranger" in result["Message"]


# -- authorization -----------------------------------------------------------------------------

def test_method_needing_a_property_the_group_lacks_is_refused(grid):
    result = grid.client(proxy="user").adminOnly()
    assert not result["OK"]
    assert result["Errno"] == errno.EACCES
    assert "ServiceAdministrator" in result["Message"]
    assert grid.client(proxy="admin").adminOnly()["OK"]


def test_pilot_only_method_refuses_users(grid):
    assert not grid.client(proxy="bob").pilotOnly()["OK"]


# -- arguments and errors ----------------------------------------------------------------------------

def test_wrong_argument_type_gets_s_error_naming_the_argument(grid):
    result = grid.client().add("2", 3)
    assert not result["OK"]
    assert "argument 1 (a) should be int, got str" in result["Message"]


def test_wrong_argument_count_gets_s_error(grid):
    result = grid.client().add(1)
    assert not result["OK"]
    assert "takes 2 arguments, 1 given" in result["Message"]


def test_container_and_optional_arguments_are_checked(grid):
    assert grid.client().describe(["a", "b"])["Value"] == {"count": 2, "options": {}}
    assert grid.client().describe(["a"], {"x": 1})["Value"]["options"] == {"x": 1}
    result = grid.client().describe(["a", 3])
    assert not result["OK"] and "items" in result["Message"]


def test_unknown_method_gets_s_error(grid):
    result = grid.client().noSuchMethod()
    assert not result["OK"]
    assert "has no method 'noSuchMethod'" in result["Message"]


def test_server_bug_gives_generic_error_without_internals(grid):
    result = grid.client().crash()
    assert not result["OK"]
    assert "internal error in crash" in result["Message"]
    assert "secret" not in result["Message"]
    assert "CallStack" not in result


def test_typed_exception_keeps_its_errno(grid):
    result = grid.client().missing("thing")
    assert not result["OK"]
    assert result["Errno"] == errno.ENOENT
    assert "no object called thing" in result["Message"]


def test_jencode_types_round_trip(grid):
    value = {"when": datetime.datetime(2026, 1, 2, 3, 4, 5), "day": datetime.date(2026, 1, 2),
             "raw": b"\x00\xff", "pair": (1, 2), "nested": [{"a": None}]}
    answer = grid.client().echo(value)
    assert answer["OK"], answer
    assert answer["Value"] == {**value, "pair": [1, 2]}


# -- streaming ----------------------------------------------------------------------------------------

def test_stream_to_client_writes_the_file(grid, tmp_path):
    target = tmp_path / "download.bin"
    result = grid.client().receiveFile(target, 5_000_003)
    assert result["OK"], result
    data = target.read_bytes()
    assert len(data) == 5_000_003
    assert data[:16] == b"0123456789abcdef"


def test_stream_from_client_receives_large_file_intact(grid, tmp_path):
    source = tmp_path / "upload.bin"
    payload = bytes(range(256)) * (80_000)  # 20 MB
    source.write_bytes(payload)
    result = grid.client().sendFile(source, "upload.bin")
    assert result["OK"], result
    assert result["Value"] == {"name": "upload.bin", "size": len(payload),
                               "sha256": hashlib.sha256(payload).hexdigest()}


# -- concurrency, failover, keep-alive ----------------------------------------------------------

def test_blocking_method_does_not_block_other_calls(grid):
    done = threading.Event()

    def slow() -> None:
        grid.client().sleep(3.0)
        done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    result = grid.client().ping()
    assert result["OK"], result
    assert not done.is_set(), "ping waited for the sleeping call"
    thread.join()


def test_client_fails_over_to_another_url(grid):
    dead = f"https://127.0.0.1:{_closedPort()}/Test/Dummy"
    for _ in range(4):  # the order of URLs is random: both orders must work
        client = RPCClient(f"{dead},{grid.url('Test/Dummy')}", proxyLocation=str(grid.proxies["admin"]),
                           useCertificates=False)
        assert client.add(1, 2)["Value"] == 3


def test_unreachable_service_gives_clear_error(grid):
    client = RPCClient(f"https://127.0.0.1:{_closedPort()}/Test/Dummy", proxyLocation=str(grid.proxies["admin"]),
                       useCertificates=False, timeout=5)
    result = client.add(1, 2)
    assert not result["OK"]
    assert "cannot reach" in result["Message"]


def test_connections_are_reused(grid, monkeypatch):
    import urllib3.connectionpool

    opened = []
    original = urllib3.connectionpool.HTTPSConnectionPool._new_conn

    def counting(pool):
        opened.append(pool.port)
        return original(pool)

    monkeypatch.setattr(urllib3.connectionpool.HTTPSConnectionPool, "_new_conn", counting)
    client = grid.client(proxy="bob")
    for _ in range(10):
        assert client.add(1, 1)["OK"]
    assert opened.count(grid.port) <= 1


def _closedPort() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- robustness ----------------------------------------------------------------------------------------

def _tlsSocket(grid) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=None, capath=str(grid.instance.certificatesDir))
    context.load_cert_chain(str(grid.proxies["admin"]))
    sock = socket.create_connection(("127.0.0.1", grid.port), timeout=10)
    return context.wrap_socket(sock, server_hostname="127.0.0.1")


def test_server_survives_a_burst_of_malformed_requests(grid):
    cert = str(grid.proxies["admin"])
    bad = [
        {"method": "add", "args": "[1, 2"},              # truncated JSON
        {"method": "add", "args": "{\"a\": 1}"},         # not a list
        {"method": "add", "args": '[{"__dCls": "os", "__dMod": "os"}]'},  # class injection
        {"args": "[1, 2]"},                               # no method
        {"method": "add", "args": "[" + "1," * 2_000_000 + "1]"},  # huge args
    ]
    for _ in range(3):
        for fields in bad:
            response = rawPost(grid, fields, cert=cert)
            assert response.status_code in (200, 400, 413)
            assert JEncode.decode(response.text)[0]["OK"] is False
    oversized = rawPost(grid, {"method": "add", "args": "[" + "1," * 40_000_000 + "1]"}, cert=cert)
    assert oversized.status_code in (400, 413)
    for _ in range(5):  # truncated bodies and garbage on raw TLS connections
        with _tlsSocket(grid) as sock:
            sock.sendall(b"POST /Test/Dummy HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n\r\nmethod=add&ar")
        with _tlsSocket(grid) as sock:
            sock.sendall(b"\x00\x01garbage that is not HTTP\r\n\r\n")
            try:
                sock.recv(100)
            except (ssl.SSLError, OSError):
                pass
    assert grid.client().add(20, 22)["Value"] == 42
