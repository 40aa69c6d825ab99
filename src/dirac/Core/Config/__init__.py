"""The configuration client: ``gConfig`` and helpers to find things in the CS."""

from dirac.Core.Config.ConfigurationClient import ConfigurationClient

gConfig = ConfigurationClient()

__all__ = ["gConfig", "ConfigurationClient"]
