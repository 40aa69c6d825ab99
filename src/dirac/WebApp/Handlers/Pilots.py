"""Pilot Monitor: pilots by site, CE and status; a pilot's attributes, jobs, output and log."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from dirac.WebApp.Handlers.Base import PortalHandler, ServiceRefusal, unwrap
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotManagerClient

#: query argument -> pilot attribute (DIRAC's: GridSite is the site, DestinationSite the CE)
FILTERS = {"site": "GridSite", "ce": "DestinationSite", "status": "Status"}
COLUMNS = ["PilotJobReference", "GridSite", "DestinationSite", "Queue", "Status", "SubmissionTime",
           "LastUpdateTime", "Jobs"]
PAGE_SIZE = 50


class PilotMonitorHandler(PortalHandler):
    """Counts by site, CE and status, and the newest pilots matching the filters."""

    async def get(self) -> None:
        conditions = {attr: self.get_query_argument(arg) for arg, attr in FILTERS.items()
                      if self.get_query_argument(arg, "")}
        try:
            page = max(0, int(self.get_query_argument("page", "0")))
        except ValueError:
            page = 0

        def load(options: dict[str, Any]) -> dict[str, Any]:
            client = PilotManagerClient(**options)
            counters = unwrap(client.getCounters("PilotAgents", ["GridSite", "DestinationSite", "Status"], conditions))
            total = unwrap(client.countPilots(conditions))
            references = unwrap(client.selectPilots(conditions, None, None, "SubmissionTime", "SubmissionTime:DESC",
                                                    (page + 1) * PAGE_SIZE))[page * PAGE_SIZE:]
            info = unwrap(client.getPilotInfo(references)) if references else {}
            return {"counters": counters, "total": total, "pilots": [info[ref] for ref in references if ref in info]}

        try:
            data = await self.act(load)
        except ServiceRefusal as exc:
            self.set_status(400)
            await self.show("error.html", title="Pilot selection refused", message=exc.message)
            return
        summary: dict[tuple[str, str], dict[str, int]] = {}
        statuses: set[str] = set()
        for values, count in data["counters"]:
            key = (values.get("GridSite", ""), values.get("DestinationSite", ""))
            summary.setdefault(key, {})[values.get("Status", "")] = count
            statuses.add(values.get("Status", ""))
        await self.show("pilots.html", pilots=data["pilots"], total=data["total"], summary=summary,
                        statuses=sorted(statuses), columns=COLUMNS, page=page, pageSize=PAGE_SIZE,
                        filters={arg: self.get_query_argument(arg, "") for arg in FILTERS},
                        queryString=urlencode({k: v for k, v in
                                               ((a, self.get_query_argument(a, "")) for a in FILTERS) if v}))


class PilotDetailHandler(PortalHandler):
    """One pilot (``?ref=<PilotJobReference>``): attributes, jobs, standard output and error, streamed log."""

    async def get(self) -> None:
        reference = self.get_query_argument("ref", "")
        if not reference:
            self.set_status(400)
            await self.show("error.html", title="Pilot", message="Give the pilot reference: ?ref=...")
            return

        def load(options: dict[str, Any]) -> dict[str, Any]:
            client = PilotManagerClient(**options)
            info = unwrap(client.getPilotInfo(reference))[reference]
            output = client.getPilotOutput(reference)
            logging = client.getPilotLoggingInfo(reference)
            return {"info": info, "output": output.get("Value") or {},
                    "outputError": "" if output["OK"] else output["Message"],
                    "logging": logging.get("Value") or "", "loggingError": "" if logging["OK"] else logging["Message"]}

        try:
            data = await self.act(load)
        except ServiceRefusal as exc:
            self.set_status(404)
            await self.show("error.html", title=f"Pilot {reference}", message=exc.message)
            return
        await self.show("pilot.html", reference=reference, **data)
