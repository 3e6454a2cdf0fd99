"""A stand-in for systemd's notify socket: prints each datagram it receives as one JSON line.

Usage: python notify_receiver.py PATH. Prints {"listening": PATH} once bound, then
{"pid": SENDER_PID, "message": TEXT} per datagram (the sender's pid from SO_PASSCRED, as systemd
checks it for NotifyAccess=main). Node cannot bind a unix datagram socket, hence Python.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys


def main() -> int:
    path = sys.argv[1]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.bind(path)
    os.chmod(path, 0o666)
    print(json.dumps({"listening": path}), flush=True)
    credentials_size = struct.calcsize("3i")
    while True:
        data, ancillary, _flags, _address = sock.recvmsg(65536, socket.CMSG_SPACE(credentials_size))
        pid = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", payload[:credentials_size])[0]
        print(json.dumps({"pid": pid, "message": data.decode()}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
