"""The fork server: one per code generation, the parent and reaper of that generation's workers.

Started by the master (src/worker/fork-server.ts) as `corral_worker.py --fork-server`, with the listen
sockets at the workers' fd numbers, a control pipe (fd 3: JSON lines both ways, protocol.py
FORK_SERVER_MESSAGES and FORK_SERVER_REQUESTS) and a record pipe (fd 4) for its own log records.
It imports what the generation's workers share (preload.py; the whole app with --preload) with the
garbage collector off, then waits. For each `fork` request it checks that it runs one thread,
freezes the GC'd objects (gc.freeze: the collector then never writes to the shared pages) and forks.
The child leaves this module's loop and becomes a worker (fork_child.py, then main.py's usual path):
this process never runs app code after its preload, so nothing can start a thread or hold a lock.

It exits on EOF of its control pipe (the master is gone; PR_SET_PDEATHSIG kills it too) and, once
retired, when its last child is gone. Its workers do not die with it: each has its own channels to the
master and dies when the master does.
"""

from __future__ import annotations

import ctypes
import errno
import faulthandler
import gc
import importlib
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from .channel import read_channel
from .failures import AppLoadFailure, MasterGone, error_location, exception_summary, failure_summary, failure_traceback
from .loading import add_app_dir_to_path, load_env_file
from .logs import JsonLineHandler, RecordChannel, configure_logging
from .parent import die_with_parent
from .preload import own_roots, preload_imports, preload_uvicorn, third_party_imports
from .protocol import EXIT_CODES, FORK_SERVER_MESSAGES, FORK_SERVER_REQUESTS
from .standby import snapshot_import_path

log = logging.getLogger("corral.fork_server")

# Terminal and operator signals are the master's to act on: a TERM sent to the whole process group or
# cgroup (systemd's KillMode=control-group, `timeout`, a terminal's ^C) must not end the fork server
# while the master drains its workers. The master ends it (EOF of its pipe, a retire, SIGKILL).
IGNORED_SIGNALS = (
    signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH, signal.SIGUSR1, signal.SIGUSR2,
)


@dataclass
class ChildStart:
    """What a forked child returns from the fork server's loop: it becomes the worker of this token."""

    settings: dict[str, Any]
    token: str
    server: ForkServer


# The names OpenBLAS builds export its thread count under: plain, numpy's and scipy's bundled copies
# (symbol prefix scipy_, suffix 64_ for 64-bit integers).
OPENBLAS_THREAD_COUNT_SYMBOLS = (
    "openblas_get_num_threads",
    "openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads",
    "scipy_openblas_get_num_threads64_",
)


def openblas_threads() -> int:
    """The worker threads of the OpenBLAS libraries this process has loaded (numpy and scipy bring one,
    which starts its threads at import). OpenBLAS parks them at a fork and starts them again in the
    child at its next call (pthread_atfork), so they hold no lock a forked worker could wait on."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split(None, 5)[5].strip() for line in maps if line.count(" ") >= 5 and "openblas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:
        return 0
    count = 0
    for path in sorted(paths):
        if not path.startswith("/"):
            continue
        try:
            # Loaded already: this is the same library, not a second copy.
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in OPENBLAS_THREAD_COUNT_SYMBOLS:
            thread_count = getattr(library, symbol, None)
            if thread_count is not None:
                count += max(0, int(thread_count()) - 1)
                break
    return count


def other_threads(fork_safe_native: int = 0) -> list[str]:
    """The threads running beside the main one that make forking unsafe: Python's by name, others (C
    libraries') by their comm, unless there are no more native ones than `fork_safe_native` (the
    loaded OpenBLAS's: openblas_threads())."""
    main = threading.main_thread()
    names = [thread.name for thread in threading.enumerate() if thread is not main]
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return names
    if len(tasks) > 1 + len(names):
        known = {thread.native_id for thread in threading.enumerate()}
        native: list[str] = []
        for task in sorted(tasks, key=int):
            if int(task) in known:
                continue
            try:
                with open(f"/proc/self/task/{task}/comm", encoding="utf-8", errors="replace") as comm:
                    native.append(f"{comm.read().strip()} (native thread {task})")
            except OSError:
                continue
        # Which native thread is OpenBLAS's cannot be read from /proc (they carry the process's name):
        # up to its count they are taken as its.
        if len(native) > fork_safe_native:
            names.extend(native)
    return names


def describe_socket(fd: int) -> str:
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return f"fd {fd}"
    try:
        kind = {socket.AF_INET: "tcp" if sock.type == socket.SOCK_STREAM else "udp", socket.AF_INET6: "tcp6" if sock.type == socket.SOCK_STREAM else "udp6", socket.AF_UNIX: "unix"}.get(sock.family, "socket")
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
        return f"fd {fd}: {kind}" + (f" to {peer}" if peer else "")
    finally:
        sock.close()


def foreign_sockets(keep: set[int]) -> list[int]:
    """Sockets open in this process that are neither stdio nor the channels nor the listen sockets:
    opened by preloaded code. A forked worker must not share them (two processes on one connection)."""
    found: list[int] = []
    try:
        entries = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for entry in entries:
        fd = int(entry)
        if fd <= 4 or fd in keep:
            continue
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                found.append(fd)
        except OSError:
            continue
    return sorted(found)


def file_stamp(path: str) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


def preloaded_files(settings: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """What the preload depends on, each with its mtime and size: every loaded module's file, the
    --env-file (read into this process's environment), and the import path's directories outside the
    app's own (a package installed or removed there changes the directory)."""
    paths: set[str] = set()
    for module in list(sys.modules.values()):
        # From the module's dict: a module-level __getattr__ (PEP 562) could import on a getattr.
        path = getattr(module, "__dict__", {}).get("__file__")
        if isinstance(path, str):
            paths.add(path)
    env_file = settings.get("uvicorn", {}).get("env_file")
    if env_file:
        paths.add(os.path.abspath(str(env_file)))
    own = own_roots(settings)
    for entry in sys.path:
        directory = os.path.abspath(entry or ".")
        if os.path.isdir(directory) and not any(directory == root or directory.startswith(root + os.sep) for root in own):
            paths.add(directory)
    return {path: file_stamp(path) for path in paths}


def changed_files(snapshot: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(path for path, stamp in snapshot.items() if file_stamp(path) != stamp)


class ForkServer:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.control_fd = int(settings.get("control_fd", 3))
        self.listen_fds = [int(fd) for fd in settings.get("listen_fds", [])]
        self.records = RecordChannel(settings.get("record_fd"))
        self.children: set[int] = set()
        self.retiring = False
        self.buffer = b""
        self.original_handlers: dict[int, Any] = {}
        self.wakeup_read = -1
        self.wakeup_write = -1
        # What the preload read from disk, as it was then: a refresh for a new generation checks it.
        self.snapshot: dict[str, tuple[int, int]] = {}
        # OpenBLAS's threads, counted once per preload or refresh (only they load libraries) rather
        # than at each fork request.
        self.openblas_threads = 0
        # Reload mode: the modules of the master's `preload` request.
        self.learnt: list[str] | None = None

    # ---- reports ------------------------------------------------------------------------------

    def report(self, message_type: str, **fields: Any) -> None:
        """One message of protocol.FORK_SERVER_MESSAGES. MasterGone when the pipe is closed."""
        assert message_type in FORK_SERVER_MESSAGES and fields.keys() <= set(FORK_SERVER_MESSAGES[message_type]), (
            f"{message_type} {sorted(fields)} is not in corral_runtime.protocol"
        )
        data = (json.dumps({"type": message_type, **fields}, default=str, separators=(",", ":")) + "\n").encode()
        try:
            while data:
                data = data[os.write(self.control_fd, data):]
        except OSError:
            raise MasterGone() from None

    def report_boot_failure(self, failure: AppLoadFailure) -> None:
        exc = failure.error
        text = failure_traceback(failure) or ""
        summary = failure_summary(failure)
        log.error(summary + ("\n" + text if text else ""))
        extra: dict[str, Any] = {"exception": exception_summary(exc), **error_location(exc)} if exc is not None else {}
        self.report("boot_error", kind=failure.kind, message=summary, traceback=text, **extra)

    # ---- start --------------------------------------------------------------------------------

    def install_signals(self) -> None:
        for sig in (*IGNORED_SIGNALS, signal.SIGCHLD):
            self.original_handlers[sig] = signal.getsignal(sig)
        for sig in IGNORED_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        # SIGCHLD wakes the poll below through the wakeup pipe; the reaping happens in the loop.
        self.wakeup_read, self.wakeup_write = os.pipe()
        os.set_blocking(self.wakeup_write, False)
        os.set_blocking(self.wakeup_read, False)
        signal.set_wakeup_fd(self.wakeup_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda _sig, _frame: None)

    def preload(self) -> int:
        """Imports what the workers share; the count of modules imported. AppLoadFailure with --preload."""
        settings = self.settings
        add_app_dir_to_path(settings)
        if settings.get("reload"):
            # --reload: its held children report these mtimes (a package installed from now on is a change).
            snapshot_import_path()
        # As the workers load it before the app: a module reading the environment at import sees it.
        load_env_file(settings)
        count = preload_uvicorn(settings)
        target = str(settings.get("app", ""))
        module = target.partition(":")[0]
        if settings.get("preload_app"):
            # The module only: the app's attribute and a factory's call are each worker's, as without --preload.
            try:
                importlib.import_module(module)
            except BaseException as exc:  # noqa: BLE001 - any failure to import is the app's
                raise AppLoadFailure(f"cannot import the app {target!r}", exc) from exc
            return count + 1
        count += preload_imports(third_party_imports(module, settings))
        if settings.get("reload"):
            # --reload (never with --preload): the modules the app's workers imported from outside its
            # own code, as src/reload/fork-standby.ts sends them. Nothing else is sent before `ready`.
            count += preload_imports([(name, []) for name in self.read_learnt()])
        return count

    def read_learnt(self) -> list[str]:
        """Reload mode: waits for the `preload` request the master sends at the start. MasterGone at EOF."""
        while self.learnt is None:
            chunk = read_channel(self.control_fd, 65536)
            if not chunk:
                raise MasterGone()
            self.buffer += chunk
            # Every whole line: a `retire` may follow at once (the fork server is replaced before ready),
            # and serve() reads its pipe only when more comes. No fork request comes before `ready`.
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                self.handle(json.loads(line))
        return self.learnt

    def run(self) -> int | ChildStart:
        """Serves fork requests until the master is gone or, once retired, the last child is; a forked
        child returns from here with its ChildStart."""
        settings = self.settings
        try:
            die_with_parent(int(settings.get("master_pid", 0)))
        except MasterGone:
            return EXIT_CODES["ok"]
        # Off while importing (Instagram's finding: collections write to every object's header and
        # un-share the pages), and for the fork server's whole life: it allocates almost nothing.
        gc.disable()
        faulthandler.enable(file=sys.stderr, all_threads=True)
        configure_logging(str(settings.get("log_level", "info")), JsonLineHandler(self.records))
        self.install_signals()
        started = time.monotonic()
        try:
            count = self.preload()
        except AppLoadFailure as failure:
            try:
                self.report_boot_failure(failure)
            except MasterGone:
                pass
            return EXIT_CODES["app_load_failure"]
        except MasterGone:
            return EXIT_CODES["ok"]
        self.snapshot = preloaded_files(settings)
        try:
            self.report("ready", **self.preload_report(started, count))
            return self.serve()
        except MasterGone:
            return EXIT_CODES["ok"]

    def preload_report(self, started: float, count: int) -> dict[str, Any]:
        """ready's or refreshed's fields: what is loaded, and what makes forking unsafe (threads, shared sockets)."""
        self.openblas_threads = openblas_threads()
        threads = other_threads(self.openblas_threads)
        sockets = foreign_sockets(set(self.listen_fds) | {self.wakeup_read, self.wakeup_write, self.control_fd})
        if sockets:
            log.warning(
                "the preloaded code keeps %d socket(s) open (%s): each forked worker gets them closed "
                "(replaced with /dev/null); open connections in a post_fork hook or on first use",
                len(sockets), ", ".join(describe_socket(fd) for fd in sockets),
            )
        return {
            "modules": len(sys.modules),
            "preloaded": count,
            "seconds": round(time.monotonic() - started, 3),
            "threads": threads,
            "sockets": len(sockets),
        }

    def refresh(self, settings: dict[str, Any]) -> None:
        """A new code generation with the same preload: the app's own modules were never imported here
        (no --preload), so its new code is what each forked worker imports. What was preloaded must
        still be what is on disk; then what the new code imports from outside the app is added."""
        started = time.monotonic()
        changed = changed_files(self.snapshot)
        if changed:
            self.report("stale", changed=len(changed), files=changed[:3])
            return
        self.settings = {**self.settings, **settings}
        # New files in the app's directories (a new module of the new code) are found by the workers.
        importlib.invalidate_caches()
        count = self.preload()
        self.snapshot = {**preloaded_files(self.settings), **self.snapshot}
        self.report("refreshed", **self.preload_report(started, count))

    # ---- the loop -----------------------------------------------------------------------------

    def serve(self) -> int | ChildStart:
        # poll, not select (no fd limit) nor selectors (an epoll fd a child would inherit).
        poller = select.poll()
        poller.register(self.control_fd, select.POLLIN)
        poller.register(self.wakeup_read, select.POLLIN)
        while True:
            if self.retiring and not self.children:
                return EXIT_CODES["ok"]
            events = dict(poller.poll())
            if self.wakeup_read in events:
                try:
                    while os.read(self.wakeup_read, 512):
                        pass
                except BlockingIOError:
                    pass
            # Reaped at every turn: a SIGCHLD that came while forking is not lost.
            self.reap()
            if self.control_fd in events:
                chunk = read_channel(self.control_fd, 65536)
                if not chunk:
                    # The master is gone: the workers end themselves (their own channels' EOF).
                    return EXIT_CODES["ok"]
                self.buffer += chunk
                while b"\n" in self.buffer:
                    line, self.buffer = self.buffer.split(b"\n", 1)
                    outcome = self.handle(json.loads(line))
                    if outcome is not None:
                        return outcome

    def handle(self, request: dict[str, Any]) -> ChildStart | None:
        kind = request.get("type")
        assert kind in FORK_SERVER_REQUESTS, f"{kind} is not in corral_runtime.protocol"
        if kind == "fork":
            return self.fork(dict(request["settings"]), str(request["token"]))
        if kind == "signal":
            pid = int(request["pid"])
            # Only a child not reaped yet: its pid cannot belong to another process.
            if pid in self.children:
                try:
                    os.kill(pid, getattr(signal, str(request["signal"])))
                except ProcessLookupError:
                    pass
            return None
        if kind == "refresh":
            self.refresh(dict(request["settings"]))
            return None
        if kind == "preload":
            # Sent once, at the start: read_learnt() waits for it before the fork server is ready.
            self.learnt = [str(name) for name in request.get("modules", [])]
            return None
        if kind == "retire":
            self.retiring = True
        return None

    def fork(self, settings: dict[str, Any], token: str) -> ChildStart | None:
        threads = other_threads(self.openblas_threads)
        if threads:
            self.report("unsafe", token=token, threads=threads)
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        # Everything allocated so far moves to the permanent generation: no collection in a worker
        # touches (and so copies) these pages.
        gc.freeze()
        try:
            pid = os.fork()
        except OSError as exc:
            self.report("fork_failed", token=token, error=f"{errno.errorcode.get(exc.errno or 0, 'error')}: {exc.strerror}")
            return None
        if pid == 0:
            return ChildStart(settings=settings, token=token, server=self)
        self.children.add(pid)
        self.report("forked", token=token, pid=pid)
        return None

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            if os.WIFSIGNALED(status):
                self.report("exited", pid=pid, code=None, signal=signal.Signals(os.WTERMSIG(status)).name)
            else:
                self.report("exited", pid=pid, code=os.waitstatus_to_exitcode(status), signal=None)

    # ---- in the child -------------------------------------------------------------------------

    def close_in_child(self) -> None:
        """Undoes what the fork server set up for itself: its signal handling and its wakeup pipe. Its
        pipes to the master (fds 3 and 4) are replaced by the child's own channels (fork_child.py)."""
        signal.set_wakeup_fd(-1)
        for sig, handler in self.original_handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for fd in (self.wakeup_read, self.wakeup_write):
            try:
                os.close(fd)
            except OSError:
                pass


def serve(settings: dict[str, Any]) -> int | ChildStart:
    return ForkServer(settings).run()
