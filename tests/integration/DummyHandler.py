"""A service used only by the tests: one method per framework behaviour to prove."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, authorize
from dirac.Core.Utilities.Exceptions import NotFound


class DummyHandler(RequestHandler):
    """Test/Dummy."""

    auth_add = [AUTHENTICATED]

    def export_add(self, a: int, b: int) -> int:
        """Typed arguments."""
        return a + b

    @authorize(AUTHENTICATED)
    def export_describe(self, items: list[str], options: dict[str, Any] | None = None) -> dict:
        """Containers and optional arguments."""
        return {"count": len(items), "options": options or {}}

    auth_adminOnly = [Properties.ServiceAdministrator]

    def export_adminOnly(self) -> str:
        return "secret admin things"

    auth_pilotOnly = [Properties.GenericPilot]

    def export_pilotOnly(self) -> str:
        return "pilot things"

    auth_crash = [AUTHENTICATED]

    def export_crash(self) -> None:
        raise RuntimeError("a bug with a secret path /etc/very/secret")

    auth_missing = [AUTHENTICATED]

    def export_missing(self, name: str) -> None:
        raise NotFound(f"no object called {name}")

    auth_sleep = [AUTHENTICATED]

    def export_sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    auth_streamToClient = [AUTHENTICATED]

    def export_streamToClient(self, size: int) -> bytes:
        """Send ``size`` deterministic bytes."""
        return (b"0123456789abcdef" * (size // 16 + 1))[:size]

    auth_streamFromClient = [AUTHENTICATED]

    def export_streamFromClient(self, path: str, name: str) -> dict:
        """Receive a file: report its size and checksum."""
        digest = hashlib.sha256()
        with open(path, "rb") as data:
            while chunk := data.read(1 << 20):
                digest.update(chunk)
        return {"name": name, "size": os.path.getsize(path), "sha256": digest.hexdigest()}
