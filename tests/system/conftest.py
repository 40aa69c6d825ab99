"""System tests share their helpers through ``gridtools`` (this directory is put on the import path) and
use the test identity provider through ``idp`` (from tests/integration, put on the path after it)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parents[1] / "integration"))
