"""An agent used only by the tests: appends a line to a file each cycle, or fails on demand."""

from __future__ import annotations

from dirac.Core.Base.AgentModule import AgentModule


class CounterAgent(AgentModule):
    """Test/Counter."""

    def execute(self) -> str:
        if self.am_getOption("Fail", False):
            raise RuntimeError("asked to fail")
        with open(self.am_getOption("OutputFile", ""), "a") as out:
            out.write("cycle\n")
        return "one more line"
