"""Configuration browser: the central configuration section by section; changes for CSAdministrator."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from diraccfg import CFG

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.Core.Config.ConfigurationData import getSection
from dirac.WebApp.Handlers.Base import PortalHandler, ServiceRefusal, log, unwrap

CS_ADMIN = "CSAdministrator"


def normalPath(value: str) -> str:
    parts = [p for p in value.strip().split("/") if p]
    return "/" + "/".join(parts)


class ConfigurationHandler(PortalHandler):
    """``GET ?path=``: options and subsections (read with the user's credentials); ``POST``: set or delete."""

    async def get(self) -> None:
        path = normalPath(self.get_query_argument("path", "/"))

        def load(options: dict[str, Any]) -> tuple[str, CFG]:
            api = CSAPI(**options)
            version = unwrap(api.initialize())
            return version, api.cfg  # type: ignore[return-value]

        try:
            version, cfg = await self.act(load)
        except ServiceRefusal as exc:
            self.set_status(403)
            await self.show("error.html", title="Configuration", message=exc.message)
            return
        section = getSection(cfg, path) if path != "/" else cfg
        if section is None:
            self.set_status(404)
            await self.show("error.html", title="Configuration", message=f"No section {path}.")
            return
        options = [(name, section[name]) for name in section.listOptions()]
        crumbs, walked = [("/", "/")], ""
        for part in [p for p in path.split("/") if p]:
            walked += "/" + part
            crumbs.append((part, walked))
        await self.show("config.html", path=path, crumbs=crumbs, version=version, options=options,
                        sections=section.listSections(), editable=CS_ADMIN in (self.user or {}).get("properties", []))

    async def post(self) -> None:
        path = normalPath(self.get_body_argument("path", "/"))
        operation = self.get_body_argument("op", "")
        option = self.get_body_argument("option", "").strip().strip("/")
        value = self.get_body_argument("value", "")
        if operation not in ("set", "delete") or not option or "/" in option:
            self.flash("Give an option name (no '/') and choose set or delete.", "error")
        else:
            target = f"{path.rstrip('/')}/{option}"

            def change(options: dict[str, Any]) -> str:
                api = CSAPI(**options)
                unwrap(api.initialize())
                if operation == "set":
                    api.setOption(target, value)
                elif not api.delete(target):
                    raise ServiceRefusal(f"nothing to delete at {target}")
                return unwrap(api.commit())

            try:
                version = await self.act(change)
                log.info("portal: %s %s in the CS by %s (version %s)", operation, target,
                         (self.user or {}).get("username"), version)
                self.flash(f"{'Set' if operation == 'set' else 'Deleted'} {target}: configuration version {version}.")
            except ServiceRefusal as exc:
                self.flash(f"The change of {target} was refused: {exc.message}", "error")
        await self.saveSession()
        self.redirect(self.portal.url("config") + "?" + urlencode({"path": path}))
