"""The control channel to the master: line-delimited JSON both ways over an inherited socket."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from .settings import SETTINGS


def read_or_exit(fd: int, size: int) -> bytes:
    """Reads the control channel; its end (EOF or an error) means the master is gone, and so must this worker be."""
    while True:
        try:
            chunk = os.read(fd, size)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            os._exit(0)
        return chunk


class ControlChannel:
    """The line-delimited JSON link to the master. Writes are small and rare, so they block."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.lock = threading.Lock()
        if fd is not None:
            # Spawned inheritable; an app's subprocess must not hold the channel (nor fake reports on it).
            os.set_inheritable(fd, False)

    def send(self, message_type: str, **fields: Any) -> None:
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
            while True:
                read_or_exit(fd, 4096)

        threading.Thread(target=wait_for_eof, name="corral-master-watch", daemon=True).start()


CONTROL = ControlChannel(int(SETTINGS["control_fd"]) if "control_fd" in SETTINGS else None)


class MasterMessages:
    """Reads the master's JSON lines from the control channel; EOF means the master is gone."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def next(self, expected_type: str) -> dict[str, Any]:
        while True:
            while b"\n" not in self.buffer:
                self.buffer += read_or_exit(self.fd, 65536)
            line, self.buffer = self.buffer.split(b"\n", 1)
            message: dict[str, Any] = json.loads(line)
            if message.get("type") == expected_type:
                return message
