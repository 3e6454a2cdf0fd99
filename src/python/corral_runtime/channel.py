"""The control channel to the master: line-delimited JSON both ways over an inherited socket."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from .failures import MasterGone
from .protocol import MASTER_MESSAGES, WORKER_MESSAGES


def read_channel(fd: int, size: int) -> bytes:
    """Reads the control channel; b"" when it has ended (EOF or an error): the master is gone."""
    while True:
        try:
            return os.read(fd, size)
        except InterruptedError:
            continue
        except OSError:
            return b""


class ControlChannel:
    """The line-delimited JSON link to the master. Writes are small and rare, so they block."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.lock = threading.Lock()
        if fd is not None:
            # Spawned inheritable; an app's subprocess must not hold the channel (nor fake reports on it).
            os.set_inheritable(fd, False)

    def send(self, message_type: str, **fields: Any) -> None:
        """One message of protocol.WORKER_MESSAGES, with (some of) its fields."""
        assert message_type in WORKER_MESSAGES and fields.keys() <= set(WORKER_MESSAGES[message_type]), (
            f"{message_type} {sorted(fields)} is not in corral_runtime.protocol"
        )
        if self.fd is None:
            return
        data = (json.dumps({"type": message_type, **fields}, default=str, separators=(",", ":")) + "\n").encode()
        with self.lock:
            try:
                while data:
                    written = os.write(self.fd, data)
                    data = data[written:]
            except OSError:
                # The master is gone; the EOF watcher ends this process.
                pass

    def watch_for_master_exit(self) -> None:
        """Read the channel until EOF: the master has exited, so this worker must not linger."""
        if self.fd is None:
            return

        fd = self.fd

        def wait_for_eof() -> None:
            while read_channel(fd, 4096):
                pass
            # Immediate on purpose: the main thread may be anywhere in the app's code (or blocked in
            # it), so no exception could reach main's exit mapping, and nothing is left to drain for.
            os._exit(0)

        threading.Thread(target=wait_for_eof, name="corral-master-watch", daemon=True).start()


class MasterMessages:
    """Reads the master's JSON lines from the control channel; its end raises MasterGone."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def next(self, expected_type: str) -> dict[str, Any]:
        assert expected_type in MASTER_MESSAGES, f"{expected_type} is not in corral_runtime.protocol"
        while True:
            while b"\n" not in self.buffer:
                chunk = read_channel(self.fd, 65536)
                if not chunk:
                    raise MasterGone()
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\n", 1)
            message: dict[str, Any] = json.loads(line)
            if message.get("type") == expected_type:
                return message
