"""The configuration client: ``gConfig`` and helpers to find things in the CS."""

import os

from dirac.Core.Config.ConfigurationClient import ConfigurationClient

gConfig = ConfigurationClient()
os.register_at_fork(before=gConfig.beforeFork, after_in_child=gConfig.afterForkInChild)

__all__ = ["gConfig", "ConfigurationClient"]
