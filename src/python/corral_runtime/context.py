"""The worker's context: what every step of its life needs, built once by main.py and passed down."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from .channel import ControlChannel
from .hooks import Hooks
from .logs import JsonLineHandler, RecordChannel


def read_settings() -> dict[str, Any]:
    """The master's settings for this worker (CORRAL_WORKER_CONFIG, JSON); none when run by hand."""
    settings: dict[str, Any] = json.loads(os.environ.get("CORRAL_WORKER_CONFIG", "{}"))
    return settings


@dataclass
class WorkerContext:
    settings: dict[str, Any]
    # A warm standby learns its slot only at the master's "go" (standby.py sets it).
    slot: int
    pid: int
    control: ControlChannel
    records: RecordChannel
    # The runtime's log records; it keeps the last traceback logged for a boot_error report.
    log_handler: JsonLineHandler
    # The config file's server hooks, once loaded (none before, nor without a config file).
    hooks: Hooks = field(default_factory=Hooks)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> WorkerContext:
        """Takes the channels the master passed; from here on no app's subprocess inherits them."""
        records = RecordChannel(settings.get("record_fd"))
        return cls(
            settings=settings,
            slot=int(settings.get("slot", 0)),
            pid=os.getpid(),
            control=ControlChannel(settings.get("control_fd")),
            records=records,
            log_handler=JsonLineHandler(records),
        )
