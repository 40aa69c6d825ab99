#!/usr/bin/env python3
"""STAND-IN for an OpenStack cloud (Keystone v3, Nova, Glance, Neutron): NOT OpenStack.

OpenStack cannot run on the test machines. This small HTTP server answers exactly the calls
apache-libcloud's OpenStack driver makes for the Cloud computing element, in OpenStack's formats:

* Keystone v3 ``POST /v3/auth/tokens`` with an application credential or a password scoped to a
  project: ``201`` with ``X-Subject-Token`` and a token holding the service catalog (compute,
  image and network endpoints in one region); wrong credentials: ``401`` as Keystone answers;
* Nova (``/compute/v2.1``): ``POST /servers``, ``GET /servers/detail``, ``GET /servers/<id>``,
  ``DELETE /servers/<id>``, ``POST /servers/<id>/action`` (``os-getConsoleOutput``, ``os-stop``),
  ``GET /flavors/detail``; an unknown image or flavor is ``400`` and more servers than
  ``maxServers`` is ``403 Quota exceeded for instances``, as Nova answers;
* Glance (``/image``): ``GET /v2/images``; Neutron (``/network``): ``GET /v2.0/networks``.

Every request is recorded (``requests``: method, path, query, token, JSON body) so tests can
assert on the exact exchanges. Servers stay in ``BUILD`` until a test moves them (``setServer``),
unless the stand-in was made with ``boot=True``: then each server "boots" by running its
cloud-init user data as a local process (the ``#cloud-config`` document's ``write_files`` are
written under ``<root>/<server id>/`` + their path, its ``runcmd`` commands run with absolute
paths mapped the same way, a ``poweroff`` stand-in first on ``PATH`` and an environment holding only
``PATH``, ``HOME`` and ``LANG``, as on a fresh VM). The server is
``ACTIVE`` while the process runs; when it exits the server is ``SHUTOFF`` and its console
output (``os-getConsoleOutput``) is what the process printed. Deleting a running server kills
the process group.

Run alone: ``python3 openstack_standin.py [--port N] [--boot --root DIR]`` prints its settings
(``OS_AUTH_URL``, ``OS_APPLICATION_CREDENTIAL_ID``/``SECRET``, ``OS_USERNAME``, ``OS_PASSWORD``,
``OS_PROJECT_NAME``) and serves until interrupted.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REGION = "RegionOne"
PROJECT_ID = "6c5f8d0b2b7e4f0c9e3d2a1b0c9d8e7f"
FLAVORS = [
    {"id": "1", "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20},
    {"id": "2", "name": "m1.large", "ram": 8192, "vcpus": 4, "disk": 80},
]
IMAGES = [
    {"id": "0b8b5c7e-1d5a-4d6c-9c3e-7b2f0a1e9d01", "name": "alma9-cloud", "status": "active"},
    {"id": "4e1c7a3f-9b2d-4a8e-b6f5-2c0d9e8a7b02", "name": "debian12-cloud", "status": "active"},
]
NETWORKS = [
    {"id": "9f3a2b1c-0d4e-4f5a-8b6c-7d8e9f0a1b03", "name": "pilots-net", "status": "ACTIVE"},
    {"id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c04", "name": "public", "status": "ACTIVE"},
]
POWEROFF = "#!/bin/sh\n# stand-in for poweroff: the simulated VM stops when its cloud-init commands end\nexit 0\n"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Server:
    """One simulated Nova server."""

    id: str
    body: dict[str, Any]
    status: str = "BUILD"
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    fault: dict[str, Any] | None = None
    console: str = ""
    process: subprocess.Popen | None = None

    def view(self, base: str) -> dict[str, Any]:
        """The server as Nova's ``GET /servers/<id>`` shows it."""
        view = {
            "id": self.id, "name": self.body.get("name", ""), "status": self.status,
            "tenant_id": PROJECT_ID, "user_id": "standin-user", "hostId": "standin-host",
            "metadata": dict(self.body.get("metadata") or {}), "created": self.created, "updated": self.updated,
            "image": {"id": self.body.get("imageRef", "")}, "flavor": {"id": self.body.get("flavorRef", "")},
            "key_name": self.body.get("key_name"), "addresses": {},
            "links": [{"rel": "self", "href": f"{base}/servers/{self.id}"}],
            "OS-EXT-STS:vm_state": self.status.lower(), "accessIPv4": "", "accessIPv6": "",
        }
        if self.fault:
            view["fault"] = self.fault
        return view


class OpenStackStandIn:
    """The stand-in's state and HTTP server (``start``/``stop``); see the module docstring."""

    def __init__(self, boot: bool = False, root: Path | None = None, maxServers: int = 100,
                 appCredential: tuple[str, str] = ("standin-appcred-id", "standin-appcred-secret"),
                 user: tuple[str, str, str] = ("pilot-factory", "standin-password", "dirac-pilots")):
        self.boot = boot
        self.root = root
        self.maxServers = maxServers
        self.appCredential = appCredential
        self.user = user  # (name, password, project name), all in the domain 'Default'
        self.servers: dict[str, Server] = {}
        self.requests: list[dict[str, Any]] = []
        self.tokens: set[str] = set()
        self.lock = threading.RLock()
        self.httpd: ThreadingHTTPServer | None = None
        if boot and root is None:
            raise ValueError("boot=True needs a root directory for the simulated VMs")

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, port: int = 0) -> OpenStackStandIn:
        standin = self

        class Handler(RequestHandler):
            state = standin

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="openstack-standin").start()
        return self

    def stop(self) -> None:
        with self.lock:
            for server in self.servers.values():
                self._killProcess(server)
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    @property
    def url(self) -> str:
        assert self.httpd is not None, "the stand-in is not started"
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def authURL(self) -> str:
        return f"{self.url}/identity"

    def settings(self) -> dict[str, str]:
        return {"OS_AUTH_URL": self.authURL, "OS_REGION_NAME": REGION,
                "OS_APPLICATION_CREDENTIAL_ID": self.appCredential[0],
                "OS_APPLICATION_CREDENTIAL_SECRET": self.appCredential[1], "OS_USERNAME": self.user[0],
                "OS_PASSWORD": self.user[1], "OS_PROJECT_NAME": self.user[2]}

    # -- what tests look at and change ------------------------------------------------------------
    def calls(self, method: str = "", path: str = "") -> list[dict[str, Any]]:
        """The recorded requests, optionally those with this method and a path ending with ``path``."""
        with self.lock:
            return [r for r in self.requests if (not method or r["method"] == method)
                    and (not path or r["path"].endswith(path))]

    def userData(self, serverID: str) -> str:
        """The decoded user data a server was created with."""
        return base64.b64decode(self.servers[serverID].body.get("user_data", "")).decode()

    def setServer(self, serverID: str, status: str, fault: str = "", console: str | None = None,
                  created: str | None = None) -> None:
        """Move a server to ``status`` (ACTIVE, SHUTOFF, ERROR, ...), with a fault message or console output."""
        with self.lock:
            server = self.servers[serverID]
            server.status, server.updated = status, now()
            if fault:
                server.fault = {"code": 500, "message": fault, "created": now()}
            if console is not None:
                server.console = console
            if created is not None:
                server.created = created

    # -- the API ------------------------------------------------------------------------------------
    def catalog(self) -> list[dict[str, Any]]:
        def entry(kind: str, name: str, path: str) -> dict[str, Any]:
            return {"type": kind, "name": name, "id": uuid.uuid4().hex, "endpoints": [
                {"id": uuid.uuid4().hex, "interface": "public", "region": REGION, "region_id": REGION,
                 "url": f"{self.url}{path}"}]}
        return [entry("compute", "nova", "/compute/v2.1"), entry("image", "glance", "/image"),
                entry("network", "neutron", "/network"), entry("identity", "keystone", "/identity")]

    def authenticate(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        identity = body.get("auth", {}).get("identity", {})
        methods = identity.get("methods", [])
        accepted = False
        if "application_credential" in methods:
            credential = identity.get("application_credential", {})
            accepted = (credential.get("id"), credential.get("secret")) == self.appCredential
        elif "password" in methods:
            user = identity.get("password", {}).get("user", {})
            project = body.get("auth", {}).get("scope", {}).get("project", {})
            accepted = ((user.get("name"), user.get("password"), project.get("name")) == self.user
                        and user.get("domain", {}).get("name") == "Default"
                        and project.get("domain", {}).get("id") == "default")
        if not accepted:
            return 401, {"error": {"code": 401, "title": "Unauthorized",
                                   "message": "The request you have made requires authentication."}}, {}
        token = uuid.uuid4().hex
        with self.lock:
            self.tokens.add(token)
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=12)
        return 201, {"token": {
            "methods": methods, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), "issued_at": now(),
            "user": {"id": "standin-user", "name": self.user[0], "domain": {"id": "default", "name": "Default"}},
            "project": {"id": PROJECT_ID, "name": self.user[2], "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r1", "name": "member"}], "catalog": self.catalog()}}, {"X-Subject-Token": token}

    def compute(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        base = f"{self.url}/compute/v2.1"
        parts = [p for p in path.split("/") if p]
        if parts == ["flavors", "detail"]:
            return 200, {"flavors": [{**f, "links": [], "OS-FLV-EXT-DATA:ephemeral": 0, "swap": "",
                                      "rxtx_factor": 1.0, "os-flavor-access:is_public": True} for f in FLAVORS]}
        if parts == ["servers"] and method == "POST":
            return self.createServer(body.get("server", {}), base)
        if parts == ["servers", "detail"]:
            with self.lock:
                return 200, {"servers": [s.view(base) for s in self.servers.values()]}
        if len(parts) >= 2 and parts[0] == "servers":
            with self.lock:
                server = self.servers.get(parts[1])
                if server is None:
                    return 404, {"itemNotFound": {"code": 404, "message": f"Instance {parts[1]} could not be found."}}
                if len(parts) == 2 and method == "GET":
                    return 200, {"server": server.view(base)}
                if len(parts) == 2 and method == "DELETE":
                    self._killProcess(server)
                    del self.servers[server.id]
                    return 204, None
                if parts[2:] == ["action"] and "os-getConsoleOutput" in body:
                    length = body["os-getConsoleOutput"].get("length")
                    lines = server.console.splitlines(keepends=True)
                    return 200, {"output": "".join(lines[-int(length):] if length else lines)}
                if parts[2:] == ["action"] and "os-stop" in body:
                    self._killProcess(server)
                    server.status, server.updated = "SHUTOFF", now()
                    return 202, None
        return 404, {"itemNotFound": {"code": 404, "message": f"The resource could not be found: {method} {path}"}}

    def createServer(self, request: dict[str, Any], base: str) -> tuple[int, Any]:
        if request.get("imageRef") not in [image["id"] for image in IMAGES]:
            return 400, {"badRequest": {"code": 400, "message": "Invalid imageRef provided."}}
        if request.get("flavorRef") not in [flavor["id"] for flavor in FLAVORS]:
            return 400, {"badRequest": {"code": 400, "message": f"Flavor {request.get('flavorRef')} could not be "
                                                               "found."}}
        for network in request.get("networks") or []:
            if network.get("uuid") not in [n["id"] for n in NETWORKS]:
                return 400, {"badRequest": {"code": 400, "message": f"Network {network.get('uuid')} could not be "
                                                                   "found."}}
        with self.lock:
            if len(self.servers) >= self.maxServers:
                return 403, {"forbidden": {"code": 403, "message": "Quota exceeded for instances: Requested 1, but "
                                           f"already used {len(self.servers)} of {self.maxServers} instances"}}
            server = Server(uuid.uuid4().hex, request)
            self.servers[server.id] = server
        if self.boot:
            threading.Thread(target=self._bootServer, args=(server,), daemon=True).start()
        return 202, {"server": {"id": server.id, "links": [{"rel": "self", "href": f"{base}/servers/{server.id}"}],
                                "adminPass": "standin", "OS-DCF:diskConfig": "MANUAL"}}

    # -- the simulated VMs --------------------------------------------------------------------------
    def _bootServer(self, server: Server) -> None:
        assert self.root is not None
        vmRoot = self.root / server.id
        try:
            config = parseCloudConfig(base64.b64decode(server.body.get("user_data", "")).decode())
            for item in config.get("write_files", []):
                path = vmRoot / item["path"].lstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                content = item.get("content", "")
                path.write_bytes(decodeContent(content, item.get("encoding", "")))
                path.chmod(int(str(item.get("permissions", "0644")), 8))
            (vmRoot / "sbin").mkdir(parents=True, exist_ok=True)
            (vmRoot / "sbin" / "poweroff").write_text(POWEROFF)
            (vmRoot / "sbin" / "poweroff").chmod(0o755)
            script = "".join(
                " ".join(quoteArgument(str(vmRoot / a.lstrip("/")) if a.startswith("/") and
                                       (vmRoot / a.lstrip("/")).exists() else a) for a in command) + "\n"
                for command in config.get("runcmd", []))
            (vmRoot / "root").mkdir(exist_ok=True)
            # a fresh VM's environment: nothing of this process's (no grid client settings leak in)
            environment = {"PATH": f"{vmRoot / 'sbin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "HOME": str(vmRoot / "root"), "LANG": "C.UTF-8"}
            with self.lock:
                if server.id not in self.servers:
                    return  # deleted while building
                server.process = subprocess.Popen(["/bin/sh", "-c", script], cwd=vmRoot, env=environment,
                                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL, start_new_session=True)
                server.status, server.updated = "ACTIVE", now()
            assert server.process.stdout is not None
            for line in server.process.stdout:
                with self.lock:
                    server.console += line.decode(errors="replace")
            server.process.wait()
            with self.lock:
                if server.status == "ACTIVE":
                    server.status, server.updated = "SHUTOFF", now()
        except Exception as exc:  # a broken user data makes the server fail to boot, as cloud-init would
            with self.lock:
                server.status, server.updated = "ERROR", now()
                server.fault = {"code": 500, "message": f"stand-in boot failed: {exc}", "created": now()}

    @staticmethod
    def _killProcess(server: Server) -> None:
        if server.process is not None and server.process.poll() is None:
            try:
                os.killpg(server.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def parseCloudConfig(userData: str) -> dict[str, Any]:
    """The ``#cloud-config`` document (written as JSON, which is YAML) of the user data."""
    header, _, document = userData.partition("\n")
    if header.strip() != "#cloud-config":
        raise ValueError(f"user data is not a #cloud-config document (first line {header[:40]!r})")
    return json.loads(document)


def decodeContent(content: str, encoding: str) -> bytes:
    """A ``write_files`` entry's bytes (cloud-init's encodings: none, ``b64``, ``gz+b64``)."""
    if encoding in ("gz+b64", "gzip+base64", "gz+base64"):
        return gzip.decompress(base64.b64decode(content))
    if encoding in ("b64", "base64"):
        return base64.b64decode(content)
    if encoding:
        raise ValueError(f"unknown write_files encoding {encoding!r}")
    return content.encode()


def quoteArgument(argument: str) -> str:
    return "'" + argument.replace("'", "'\\''") + "'"


class RequestHandler(BaseHTTPRequestHandler):
    state: OpenStackStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._send(400, {"badRequest": {"code": 400, "message": "Malformed request body"}})
            return
        token = self.headers.get("X-Auth-Token", "")
        with self.state.lock:
            self.state.requests.append({"method": self.command, "path": split.path, "query": parse_qs(split.query),
                                        "token": token, "body": body})
        if split.path == "/identity/v3/auth/tokens" and self.command == "POST":
            status, answer, headers = self.state.authenticate(body)
            self._send(status, answer, headers)
            return
        if token not in self.state.tokens:
            self._send(401, {"error": {"code": 401, "title": "Unauthorized",
                                       "message": "The request you have made requires authentication."}})
            return
        if split.path.startswith("/compute/v2.1/"):
            status, answer = self.state.compute(self.command, split.path[len("/compute/v2.1"):], body)
        elif split.path == "/image/v2/images":
            status, answer = 200, {"images": [{**image, "visibility": "public", "created_at": now(),
                                               "updated_at": now(), "tags": []} for image in IMAGES],
                                   "first": "/v2/images", "schema": "/v2/schemas/images"}
        elif split.path == "/network/v2.0/networks":
            status, answer = 200, {"networks": [{**network, "subnets": [], "tenant_id": PROJECT_ID}
                                                for network in NETWORKS]}
        else:
            status, answer = 404, {"itemNotFound": {"code": 404, "message": f"no such resource {split.path}"}}
        self._send(status, answer)

    def _send(self, status: int, answer: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(answer).encode() if answer is not None else b""
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = _handle


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="STAND-IN for an OpenStack cloud (not OpenStack)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--boot", action="store_true", help="run each server's cloud-init user data locally")
    parser.add_argument("--root", type=Path, help="directory of the simulated VMs (with --boot)")
    arguments = parser.parse_args(argv)
    standin = OpenStackStandIn(boot=arguments.boot, root=arguments.root).start(arguments.port)
    for name, value in standin.settings().items():
        print(f"{name}={value}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
