"""The base of the agents that work on jobs and pilots straight in the WMS databases.

Each database may be given to the constructor (tests, an embedding process); those not given
are opened from the CS in ``initialize``, when the agent starts.
"""

from __future__ import annotations

from dirac.Core.Base.AgentModule import AgentModule
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB


class JobDatabasesAgent(AgentModule):
    """An agent with JobDB, JobLoggingDB, TaskQueueDB and PilotAgentsDB."""

    def __init__(self, agentName: str, jobDB: JobDB | None = None, loggingDB: JobLoggingDB | None = None,
                 taskQueueDB: TaskQueueDB | None = None, pilotDB: PilotAgentsDB | None = None):
        super().__init__(agentName)
        self.jobDB = jobDB
        self.loggingDB = loggingDB
        self.taskQueueDB = taskQueueDB
        self.pilotDB = pilotDB

    def initialize(self) -> None:
        self.jobDB = self.jobDB or JobDB()
        self.loggingDB = self.loggingDB or JobLoggingDB()
        self.taskQueueDB = self.taskQueueDB or TaskQueueDB()
        self.pilotDB = self.pilotDB or PilotAgentsDB()
