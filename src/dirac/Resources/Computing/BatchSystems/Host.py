"""Host: pilots as plain detached processes on the batch host (``setsid nohup``), no batch system at all.

The batch id is the pilot stamp. Next to the output files each job has ``<id>.pid`` (process id
and start time, so a reused pid is not mistaken for the pilot), ``<id>.exit`` once it ended and
``<id>.killed`` when it was killed through the CE. States: Running while the process lives; Done
or Failed from the exit code; Aborted when it was killed or vanished without an exit code (the
host rebooted, someone killed it). Linux hosts only (/proc).
"""

from __future__ import annotations

from dirac.Resources.Computing.BatchSystems.BatchSystem import BatchJob, BatchSystem, BatchSystemError, JobState
from dirac.Resources.Computing.CommandRunner import quote
from dirac.Resources.Computing.ComputingElement import ABORTED, RUNNING, UNKNOWN

# probe ID: prints "ID exit CODE", "ID running", "ID killed", "ID gone" or "ID unknown"
_PROBE = r"""
probe() {
  f="$OUT/$1"
  if [ -f "$f.exit" ]; then echo "$1 exit $(cat "$f.exit")"; return; fi
  if [ ! -f "$f.pid" ]; then echo "$1 unknown"; return; fi
  read -r pid start < "$f.pid"
  set -- "$1" $(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null)
  if [ -n "$2" ] && [ "$2" != Z ] && [ "$2" != X ] && [ "${21}" = "$start" ]; then echo "$1 running"
  elif [ -f "$f.exit" ]; then echo "$1 exit $(cat "$f.exit")"
  elif [ -f "$f.killed" ]; then echo "$1 killed"
  else echo "$1 gone"; fi
}
"""


class Host(BatchSystem):
    """Runs each pilot as its own session (process group) on the host, detached from the SSH connection."""

    name = "Host"
    jobIDVariable = ""

    def _prelude(self) -> str:
        return f"OUT={quote(self.outputArea)}\n{_PROBE}"

    def submit(self, jobs: list[BatchJob]) -> list[str]:
        lines = [f"OUT={quote(self.outputArea)}"]
        for job in jobs:
            stdout, stderr = self.outputFiles(job.stamp)
            pidFile = f"{self.outputArea}/{job.stamp}.pid"
            lines.append(
                f"cd {quote(job.workDirectory)} || exit 1\n"
                f"setsid nohup /bin/sh {quote(job.script)} > {quote(stdout)} 2> {quote(stderr)} < /dev/null &\n"
                f"pid=$!; echo \"$pid $(sed 's/.*) //' /proc/$pid/stat 2>/dev/null | cut -d' ' -f20)\""
                f" > {quote(pidFile)} || exit 1\n"
                f"echo {quote(job.stamp)}"
            )
        result = self.runner.run("\n".join(lines))
        started = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        if not started:
            raise BatchSystemError(f"{self.runner.host}: no pilot started: {result.describe()}")
        return started

    def getStatus(self, batchIDs: list[str]) -> dict[str, JobState]:
        if not batchIDs:
            return {}
        result = self.runner.run(self._prelude() + "\n".join(f"probe {quote(i)}" for i in batchIDs))
        if not result.ok:
            raise BatchSystemError(f"{self.runner.host}: cannot read the pilot processes: {result.describe()}")
        states = {i: JobState(UNKNOWN, "no trace of this pilot on the host") for i in batchIDs}
        for line in result.stdout.splitlines():
            batchID, _, what = line.strip().partition(" ")
            if batchID not in states:
                continue
            if what.startswith("exit "):
                code = what.split()[1]
                states[batchID] = (self.stateFromExitCode(int(code)) if code.lstrip("-").isdigit()
                                   else JobState(UNKNOWN, f"unreadable exit code {code!r}"))
            elif what == "running":
                states[batchID] = JobState(RUNNING)
            elif what == "killed":
                states[batchID] = JobState(ABORTED, "killed through the CE")
            elif what == "gone":
                states[batchID] = JobState(ABORTED, "the pilot process vanished without an exit code")
        return states

    def kill(self, batchIDs: list[str]) -> None:
        grace = int(float(self.parameters.get("KillGracePeriod", 10)))
        script = self._prelude() + "pgids=''\n" + "".join(
            f'if [ "$(probe {quote(i)})" = {quote(i + " running")} ]; then read -r pid start < "$OUT/{i}.pid";'
            f' touch "$OUT/{i}.killed"; kill -TERM "-$pid" 2>/dev/null; pgids="$pgids $pid"; fi\n'
            for i in batchIDs
        ) + (
            f"for _ in $(seq {grace * 10}); do alive=''; for g in $pgids; do kill -0 \"-$g\" 2>/dev/null"
            " && alive=1; done; [ -z \"$alive\" ] && break; sleep 0.1; done\n"
            "for g in $pgids; do kill -KILL \"-$g\" 2>/dev/null; done; true"
        )
        result = self.runner.run(script, timeout=self.runner.timeout + grace)
        if not result.ok:
            raise BatchSystemError(f"{self.runner.host}: cannot kill pilots: {result.describe()}")

    def countJobs(self) -> tuple[int, int]:
        script = self._prelude() + (
            'for f in "$OUT"/*.pid; do [ -f "$f" ] || continue; id=$(basename "$f" .pid);'
            ' [ -f "$OUT/$id.exit" ] || probe "$id"; done'
        )
        result = self.runner.run(script)
        if not result.ok:
            raise BatchSystemError(f"{self.runner.host}: cannot count the pilot processes: {result.describe()}")
        return sum(1 for line in result.stdout.splitlines() if line.endswith(" running")), 0
