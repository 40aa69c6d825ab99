"""Run by a fork server's children in test_configuration.py: what configuration a forked child starts with."""

from __future__ import annotations

import json


def describe(argv: list[str]) -> None:
    from dirac.Core.Config import gConfig

    refresher = gConfig.refresher
    print(json.dumps({"value": gConfig.getValue(argv[0], ""), "version": gConfig.getVersion(),
                      "lastAnswer": refresher.lastAnswer if refresher else None,
                      "refresherRunning": bool(refresher and refresher.running)}))
