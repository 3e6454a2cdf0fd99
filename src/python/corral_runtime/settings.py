"""The worker's settings from the master (CORRAL_WORKER_CONFIG), its slot and pid, and its exit codes."""

from __future__ import annotations

import json
import os
from typing import Any

EXIT_BOOT_FAILURE = 3
EXIT_APP_LOAD_FAILURE = 4

SETTINGS: dict[str, Any] = json.loads(os.environ.get("CORRAL_WORKER_CONFIG", "{}"))
# A warm standby learns its slot only at "go" and rebinds this: read it as settings.SLOT, never import a copy.
SLOT: int = int(SETTINGS.get("slot", 0))
PID: int = os.getpid()
