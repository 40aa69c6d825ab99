"""Job Monitor: jobs by status, site, owner, group, job group and date, a job's details, actions, sandboxes, plots."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from dirac.Interfaces.API.Dirac import Dirac
from dirac.WebApp.Handlers.Base import PortalHandler, ServiceRefusal, log, unwrap
from dirac.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient
from dirac.WorkloadManagementSystem.Client.WMSClients import JobMonitoringClient

#: query argument -> job attribute
FILTERS = {"status": "Status", "site": "Site", "owner": "Owner", "group": "OwnerGroup", "jobgroup": "JobGroup"}
PAGE_SIZES = (25, 50, 100, 500)
ACTIONS = {"kill": "killJob", "reschedule": "rescheduleJob", "delete": "deleteJob"}
PLOT_ATTRIBUTES = {"status": "Status", "site": "Site"}


class HomeHandler(PortalHandler):
    public = True

    def get(self) -> None:
        self.redirect(self.portal.url("jobs") if self.user else self.portal.url("login"))


def selection(handler: PortalHandler) -> dict[str, Any]:
    """The job selection of the page's query: attribute conditions and FromDate/ToDate."""
    select: dict[str, Any] = {}
    for argument, attribute in FILTERS.items():
        values = [v for v in handler.get_query_arguments(argument) if v]
        if values:
            select[attribute] = values if len(values) > 1 else values[0]
    for argument, key in (("from", "FromDate"), ("to", "ToDate")):
        if handler.get_query_argument(argument, ""):
            select[key] = handler.get_query_argument(argument)
    return select


class JobMonitorHandler(PortalHandler):
    """The jobs the services let the user read, a page at a time."""

    async def get(self) -> None:
        try:
            size = int(self.get_query_argument("size", "25"))
            page = max(0, int(self.get_query_argument("page", "0")))
        except ValueError:
            self.set_status(400)
            await self.show("error.html", title="Bad request", message="page and size must be numbers")
            return
        size = size if size in PAGE_SIZES else PAGE_SIZES[0]
        select = selection(self)

        def load(options: dict[str, Any]) -> dict[str, Any]:
            client = JobMonitoringClient(**options)
            summary = unwrap(client.getJobPageSummaryWeb(select, [["JobID", "DESC"]], page * size, size))
            choices = {name: (client.getStates if name == "status" else client.getSites if name == "site"
                              else client.getOwners if name == "owner" else client.getJobGroups)()
                       for name in ("status", "site", "owner", "jobgroup")}
            return {"summary": summary, "choices": {k: v["Value"] if v["OK"] else [] for k, v in choices.items()}}

        try:
            data = await self.act(load)
        except ServiceRefusal as exc:
            self.set_status(400)
            await self.show("error.html", title="Job selection refused", message=exc.message)
            return
        query = {k: self.get_query_arguments(k) for k in (*FILTERS, "from", "to") if self.get_query_arguments(k)}
        await self.show("jobs.html", summary=data["summary"], choices=data["choices"], page=page, size=size,
                        sizes=PAGE_SIZES, filters={k: self.get_query_arguments(k) for k in FILTERS},
                        dates={k: self.get_query_argument(k, "") for k in ("from", "to")},
                        queryString=urlencode(query, doseq=True))


class JobActionHandler(PortalHandler):
    """Kill, reschedule or delete the chosen jobs: the JobManager decides which the user may."""

    async def post(self) -> None:
        action = self.get_body_argument("action", "")
        back = self.get_body_argument("back", "") or self.portal.url("jobs")
        back = back if back.startswith(self.portal.config.rootURL + "/") else self.portal.url("jobs")
        try:
            jobIDs = [int(v) for v in self.get_body_arguments("JobID")]
        except ValueError:
            jobIDs = []
        if action not in ACTIONS or not jobIDs:
            self.flash("Choose one or more jobs and an action (kill, reschedule, delete).", "error")
        else:
            result = await self.act(lambda options: getattr(Dirac(**options), ACTIONS[action])(jobIDs))
            who = (self.user or {}).get("username")
            if result["OK"]:
                log.info("portal: %s by %s on jobs %s", action, who, jobIDs)
                self.flash(f"{action.capitalize()} sent for job(s) {', '.join(map(str, jobIDs))}.")
            else:
                log.info("portal: %s by %s on jobs %s refused: %s", action, who, jobIDs, result["Message"])
                self.flash(f"{action.capitalize()} refused: {result['Message']}", "error")
        await self.saveSession()
        self.redirect(back)


class JobDetailHandler(PortalHandler):
    """One job: attributes, parameters, JDL and logging history."""

    async def get(self, jobID: str) -> None:
        def load(options: dict[str, Any]) -> dict[str, Any]:
            dirac = Dirac(**options)
            attributes = unwrap(dirac.getJobAttributes(int(jobID)))
            parameters = dirac.getJobParameters(int(jobID))
            jdl = dirac.getJobJDL(int(jobID))
            history = dirac.getJobLoggingInfo(int(jobID))
            sandboxes = SandboxStoreClient(**options).getSandboxesAssignedToEntity(f"Job:{int(jobID)}")
            return {"attributes": attributes, "parameters": parameters.get("Value") or {},
                    "jdl": jdl.get("Value") or "", "history": history.get("Value") or [],
                    "sandboxes": sandboxes.get("Value") or {}}

        try:
            data = await self.act(load)
        except ServiceRefusal as exc:
            self.set_status(404 if "not found" in exc.message.lower() else 403)
            await self.show("error.html", title=f"Job {jobID}", message=exc.message)
            return
        await self.show("job.html", jobID=int(jobID), **data)


class SandboxDownloadHandler(PortalHandler):
    """A job's sandbox as the tar.bz2 archive the SandboxStore keeps (checked against its SHA-256)."""

    async def get(self, jobID: str, sbType: str) -> None:
        with tempfile.TemporaryDirectory(prefix="dirac-webapp-") as tmp:
            def fetch(options: dict[str, Any]) -> Path:
                client = SandboxStoreClient(**options)
                references = unwrap(client.getSandboxesAssignedToEntity(f"Job:{int(jobID)}")).get(sbType, [])
                if not references:
                    raise ServiceRefusal(f"job {jobID} has no {sbType.lower()} sandbox")
                return Path(unwrap(client.downloadSandbox(references[0], tmp, unpack=False))[0])

            try:
                archive = await self.act(fetch)
            except ServiceRefusal as exc:
                self.set_status(404)
                await self.show("error.html", title=f"Job {jobID} {sbType} sandbox", message=exc.message)
                return
            self.set_header("Content-Type", "application/x-bzip2")
            self.set_header("Content-Disposition", f'attachment; filename="{sbType}Sandbox_{int(jobID)}.tar.bz2"')
            await sendFile(self, archive)


async def sendFile(handler: PortalHandler, path: Path) -> None:
    """Stream a local file to the browser in chunks (reads in the portal's thread pool)."""
    handler.set_header("Content-Length", str(path.stat().st_size))
    with open(path, "rb") as data:
        while chunk := await handler.blocking(data.read, 1 << 20):
            handler.write(chunk)
            await handler.flush()
    await handler.finish()


def renderBarChart(counts: dict[str, int], title: str, fmt: str) -> bytes:
    """A horizontal bar chart of counts (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    labels = sorted(counts, key=lambda k: (-counts[k], k)) or ["(no jobs)"]
    values = [counts.get(label, 0) for label in labels]
    figure = Figure(figsize=(7, 0.45 * len(labels) + 1.4), dpi=96)
    axes = figure.add_subplot()
    bars = axes.barh(labels, values, color="#3b73b9")
    axes.bar_label(bars, padding=3)
    axes.invert_yaxis()
    axes.set_title(title)
    axes.set_xlabel("jobs")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.margins(x=0.15)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format=fmt)
    return out.getvalue()


class JobPlotHandler(PortalHandler):
    """Jobs of the current selection by status or by site, as PNG or SVG."""

    async def get(self, fmt: str) -> None:
        by = self.get_query_argument("by", "status")
        if by not in PLOT_ATTRIBUTES:
            raise ServiceRefusal(f"plots are by {' or '.join(PLOT_ATTRIBUTES)}, not {by!r}")
        attribute = PLOT_ATTRIBUTES[by]
        select = selection(self)
        select.pop("ToDate", None)
        cutDate = select.pop("FromDate", None)

        def load(options: dict[str, Any]) -> bytes:
            rows = unwrap(JobMonitoringClient(**options).getCounters([attribute], select, cutDate))
            counts: dict[str, int] = {}
            for values, count in rows:
                label = str(values.get(attribute) or "Unknown")
                counts[label] = counts.get(label, 0) + int(count)
            return renderBarChart(counts, f"Jobs by {by}", fmt)

        image = await self.act(load)
        self.set_header("Content-Type", "image/png" if fmt == "png" else "image/svg+xml")
        self.finish(image)
