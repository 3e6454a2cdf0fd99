"""corral's sd_notify sender: Node has no unix datagram sockets, so the master feeds this process.

Each line on stdin is one JSON string, the text of one notification ("READY=1\\nSTATUS=..."); it is sent
as one datagram to $NOTIFY_SOCKET. When it can, the datagram carries the master's pid as its
credentials (allowed for root, as sd_pid_notify does), so systemd's default NotifyAccess=main accepts
it; otherwise it goes out with this process's own pid, which needs NotifyAccess=all in the unit.

The process ends at EOF on stdin, and with the master: PR_SET_PDEATHSIG. Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import time

from corral_runtime.parent import die_with_parent


def socket_address(raw: str) -> str:
    # systemd writes abstract-namespace addresses with a leading "@".
    return "\0" + raw[1:] if raw.startswith("@") else raw


def with_monotonic_stamp(message: str) -> str:
    # Type=notify-reload (systemd 253+) wants RELOADING=1 to carry the reload's CLOCK_MONOTONIC time.
    if "RELOADING=1" in message.split("\n") and "MONOTONIC_USEC=" not in message:
        return f"{message}\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
    return message


class Sender:
    def __init__(self, address: str, master_pid: int) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.credentials = struct.pack("3i", master_pid, os.getuid(), os.getgid()) if master_pid else None

    def send(self, message: str) -> None:
        data = message.encode()
        if self.credentials is not None:
            try:
                ancillary = [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, self.credentials)]
                self.sock.sendmsg([data], ancillary, 0, self.address)
                return
            except PermissionError:
                # Not privileged to speak for the master: from now on send as ourselves.
                self.credentials = None
        self.sock.sendto(data, self.address)


def main() -> int:
    master_pid = int(os.environ.get("CORRAL_MASTER_PID", "0"))
    die_with_parent(master_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is for the master, which ends us by EOF
    target = os.environ.get("NOTIFY_SOCKET", "")
    if not target:
        return 0
    sender = Sender(socket_address(target), master_pid)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            message = with_monotonic_stamp(str(json.loads(line)))
            sender.send(message)
        except (OSError, ValueError) as exc:
            # One line for the master's log; notifications are best effort, like sd_notify's.
            print(f"sd_notify to {target} failed: {exc}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
