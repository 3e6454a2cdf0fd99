"""A forked child's first steps: from a copy of the fork server to a process that is a worker like a spawned one.

Runs right after os.fork() returned 0 in fork_server.py, before any code of the app's own: undoes the
fork server's signal handling and pipes, connects the worker's own channels to the master, closes
what the preloaded code shared (sockets), and resets what a fresh interpreter would have fresh
(atexit, the random generators, asyncio's loop, the garbage collector). main.py then runs the
worker's usual steps, post_fork included.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import logging
import os
import random
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any, NoReturn

from .failures import MasterGone
from .protocol import CHANNEL_STREAMS

if TYPE_CHECKING:
    from .fork_server import ChildStart

# Where each channel lands: the fd numbers a spawned worker has (control 3, records 4, stdio 1 and 2).
STREAM_FDS = {"control": 3, "records": 4, "stdout": 1, "stderr": 2}


def connect_channels(path: str, token: str) -> None:
    """Opens the worker's four connections to the master's channel socket, each with its hello line,
    and puts them at the fds a spawned worker has. MasterGone when the master is not there."""
    connections: list[tuple[str, socket.socket]] = []
    try:
        for stream in CHANNEL_STREAMS:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connections.append((stream, connection))
            connection.connect(path)
            connection.sendall((json.dumps({"token": token, "stream": stream}) + "\n").encode())
    except OSError as exc:
        # Still the fork server's stderr: the master logs it as the fork server's (it may be gone, too).
        print(f"corral: a forked worker cannot connect to the master's channel socket {path}: {exc}", file=sys.stderr)
        raise MasterGone() from None
    for stream, connection in connections:
        target = STREAM_FDS[stream]
        # stdio stays inheritable, as it must; the channels are made non-inheritable by the runtime.
        if connection.fileno() == target:
            connection.detach()
            continue
        # dup2 replaces the fork server's pipe at that number.
        os.dup2(connection.fileno(), target, inheritable=stream in ("stdout", "stderr"))
        connection.close()


def close_shared_sockets(keep: set[int]) -> None:
    """Sockets the preloaded code opened (a database connection made at import) would be shared with
    the fork server and every sibling: each is replaced with /dev/null. Not closed: the app's socket
    object still owns the number, and a closed number reused by a new connection would be closed by
    that object later."""
    from .fork_server import foreign_sockets

    shared = foreign_sockets(keep)
    if not shared:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in shared:
            os.dup2(null, fd, inheritable=False)
    finally:
        os.close(null)


def fresh_process_state() -> None:
    """What a spawned interpreter starts with: no atexit handler of the fork server, random generators
    of its own, no event loop, the garbage collector on."""
    atexit._clear()
    random.seed()
    # Only when the preload imported it: numpy loads numpy.random lazily, and a worker that imports it
    # itself seeds it itself.
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        # numpy's global generator is not reseeded on fork (numpy#9650): every worker would draw the same.
        try:
            numpy_random.seed()
        except Exception:  # noqa: BLE001 - a numpy without the legacy global generator
            pass
    # A loop made by preloaded code (asyncio.get_event_loop() at import) shares its epoll fd with the
    # fork server: forget it, so asyncio makes a new one if asked. uvicorn makes its own anyway.
    policy = getattr(asyncio.events, "_event_loop_policy", None)  # only when one was made: asking would make one
    local = getattr(policy, "_local", None)
    if local is not None and getattr(local, "_loop", None) is not None:
        local._loop = None
        local._set_called = False
    gc.enable()


def become_worker(start: ChildStart) -> dict[str, Any]:
    """The child's set-up; returns the worker's settings. MasterGone when the master is gone."""
    server = start.server
    server.close_in_child()
    settings = {
        **start.settings,
        "control_fd": STREAM_FDS["control"],
        "record_fd": STREAM_FDS["records"],
        "listen_fds": server.listen_fds,
        "forked": True,
    }
    connect_channels(str(settings["channel_path"]), start.token)
    close_shared_sockets(set(server.listen_fds))
    fresh_process_state()
    # As a spawned worker has them (the app, or a subprocess of it, may read them).
    sys.argv = sys.argv[:1]
    os.environ["CORRAL_WORKER_CONFIG"] = json.dumps(settings)
    return settings


def is_forked_worker() -> bool:
    """This process became a worker in become_worker (its settings say so)."""
    try:
        return bool(json.loads(os.environ.get("CORRAL_WORKER_CONFIG", "{}")).get("forked"))
    except ValueError:
        return False


def exit_forked_worker(code: int) -> NoReturn:
    """A forked worker's end after its drain. The interpreter's finalization would tear down every
    module and object, writing to each shared page and so copying it (the fork server's preload, in
    every worker at once during a rolling restart): on a busy machine that took longer than the drain.
    What finalization does that the app can see is done here — non-daemon threads joined, atexit
    handlers run (those registered since the fork), logs and stdio flushed — then the process ends,
    as multiprocessing's forked children end."""
    main_thread = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main_thread and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
