"""corral's worker entry: runs uvicorn on listen sockets inherited from the corral master.

The master passes its settings as JSON in CORRAL_WORKER_CONFIG. This process reports to the master
over the control channel (an inherited socket, one JSON object per line) and writes its log records
as pino-compatible JSON lines on stdout. Standard library and uvicorn only.

Exit codes: 0 after a drain, 3 when start-up fails, 4 when the app cannot be imported.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import faulthandler
import json
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

EXIT_BOOT_FAILURE = 3
EXIT_APP_LOAD_FAILURE = 4

PINO_LEVELS = {
    logging.DEBUG: 20,
    logging.INFO: 30,
    logging.WARNING: 40,
    logging.ERROR: 50,
    logging.CRITICAL: 60,
}

SETTINGS: dict[str, Any] = json.loads(os.environ.get("CORRAL_WORKER_CONFIG", "{}"))
SLOT: int = int(SETTINGS.get("slot", 0))
PID: int = os.getpid()


class ControlChannel:
    """The line-delimited JSON link to the master. Writes are small and rare, so they block."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.lock = threading.Lock()

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

        def wait_for_eof() -> None:
            while True:
                try:
                    chunk = os.read(self.fd, 4096)  # type: ignore[arg-type]
                except InterruptedError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    os._exit(0)

        threading.Thread(target=wait_for_eof, name="corral-master-watch", daemon=True).start()


CONTROL = ControlChannel(int(SETTINGS["control_fd"]) if "control_fd" in SETTINGS else None)


class JsonLineHandler(logging.Handler):
    """Writes records as pino-compatible JSON lines; remembers the last traceback for the master."""

    def __init__(self) -> None:
        super().__init__()
        self.last_traceback: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line: dict[str, Any] = {
                "level": PINO_LEVELS.get(record.levelno, 30),
                "time": int(record.created * 1000),
                "pid": record.process,
                "worker": SLOT,
                "name": record.name,
                "msg": record.getMessage().rstrip(),
            }
            if record.exc_info:
                self.last_traceback = "".join(traceback.format_exception(*record.exc_info))
                exc_type, exc_value = record.exc_info[0], record.exc_info[1]
                # pino's shape for an error, so pino-pretty prints the traceback as lines.
                line["err"] = {
                    "type": exc_type.__name__ if exc_type else "Exception",
                    "message": str(exc_value),
                    "stack": self.last_traceback,
                }
            sys.stdout.write(json.dumps(line, default=str, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


LOG_HANDLER = JsonLineHandler()


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    root.handlers = [LOG_HANDLER]
    root.setLevel(level.upper() if level != "trace" else "DEBUG")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # corral's AccessLog middleware writes the access records instead.
    logging.getLogger("uvicorn.access").disabled = True


ACCESS_LOGGER_NAME = "corral.access"


class BatchedOutput:
    """Access records finished in one turn of the event loop go to stdout in one write.

    Under load a write per request wakes the master once per request; one write per loop turn
    lets it read many records at once. Only called from the event loop's thread.
    """

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.scheduled = False
        atexit.register(self.flush)

    def write(self, line: str) -> None:
        self.pending.append(line)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        if self.pending:
            data = "".join(self.pending)
            self.pending = []
            sys.stdout.write(data)
            sys.stdout.flush()


ACCESS_OUTPUT = BatchedOutput()


def write_access_record(scope: dict[str, Any], status: int, size: int, started: float, finished: float) -> None:
    """One access record, written directly: the logging module's machinery is not needed on this path.

    Its first fields are fixed, so the master can route access records by prefix without parsing.
    """
    client = scope.get("client")
    client_text = f"{client[0]}:{client[1]}" if client else "-"
    query = scope.get("query_string", b"")
    # uvicorn's scope["path"] already starts with the root path, as its own access log shows it.
    path = scope.get("path", "")
    if query:
        path = f"{path}?{query.decode('latin-1')}"
    method = scope.get("method", "-")
    http_version = scope.get("http_version", "1.1")
    duration_ms = round((finished - started) * 1000, 3)
    record = {
        "level": 30,
        "name": ACCESS_LOGGER_NAME,
        "time": int(time.time() * 1000),
        "pid": PID,
        "worker": SLOT,
        "msg": f'{client_text} - "{method} {path} HTTP/{http_version}" {status} {duration_ms}ms {size}B',
        "method": method,
        "path": path,
        "status": status,
        "duration": duration_ms,
        "client": client_text,
        "size": size,
        "http_version": http_version,
    }
    ACCESS_OUTPUT.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")


class AccessLog:
    """ASGI middleware: one access record per HTTP request, with its duration and response size.

    uvicorn's own access log has neither. The duration runs to the final body message (so background
    work after the response does not count); the size counts the body bytes sent.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        size = 0
        logged = False

        async def measured_send(message: dict[str, Any]) -> None:
            nonlocal status, size, logged
            await send(message)
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
            elif kind == "http.response.body":
                size += len(message.get("body", b""))
                if not message.get("more_body", False) and not logged:
                    logged = True
                    write_access_record(scope, status, size, started, time.perf_counter())

        try:
            await self.app(scope, receive, measured_send)
        finally:
            if not logged:
                # The app raised or returned without finishing: uvicorn answers 500 if nothing was sent.
                write_access_record(scope, status or 500, size, started, time.perf_counter())


def die_with_parent() -> None:
    """Ask Linux to kill this process when the master dies, even if the event loop is blocked."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    # The master may have died between fork and prctl.
    if os.getppid() != int(SETTINGS.get("master_pid", os.getppid())):
        os._exit(0)


def inherited_sockets() -> list[socket.socket]:
    # socket.socket(fileno=) detects family and type, so TCP keeps TCP_NODELAY and unix stays unix.
    return [socket.socket(fileno=int(fd)) for fd in SETTINGS.get("listen_fds", [])]


def add_app_dir_to_path() -> None:
    app_dir = SETTINGS.get("app_dir")
    if app_dir and os.path.abspath(app_dir) not in sys.path:
        sys.path.insert(0, os.path.abspath(app_dir))


def load_app() -> Any:
    """Import the app (and call its factory); exit 4 with the traceback on any failure."""
    from uvicorn.importer import import_from_string

    add_app_dir_to_path()
    target = SETTINGS["app"]
    try:
        app = import_from_string(target)
        if SETTINGS.get("factory"):
            app = app()
    except BaseException as exc:  # noqa: BLE001 - any failure to import is the app's, reported as such
        report_failure("app-load", exc, f"cannot import the app {target!r}")
        os._exit(EXIT_APP_LOAD_FAILURE)
    return app


def error_location(exc: BaseException | None) -> dict[str, Any]:
    """Where the error is: a SyntaxError knows its file and line; otherwise the deepest real frame."""
    if exc is None:
        return {}
    if isinstance(exc, SyntaxError) and exc.filename:
        return {"file": exc.filename, "line": exc.lineno}
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if not frame.filename.startswith("<")]
    if not frames:
        return {}
    return {"file": frames[-1].filename, "line": frames[-1].lineno}


# Frames of the import machinery, not of the app: left out of an import error's traceback.
IMPORT_MACHINERY = (os.path.abspath(__file__), os.sep + os.path.join("uvicorn", "importer.py"), os.sep + os.path.join("importlib", "__init__.py"))


def app_traceback(exc: BaseException) -> str:
    """The traceback of an import failure, from the app's first frame: a SyntaxError shows just the line."""
    details = traceback.TracebackException.from_exception(exc)
    details.stack = traceback.StackSummary.from_list(
        [
            frame
            for frame in details.stack
            if not frame.filename.startswith("<frozen") and not frame.filename.endswith(IMPORT_MACHINERY)
        ]
    )
    return "".join(details.format())


def exception_summary(exc: BaseException) -> str:
    """`SyntaxError: invalid syntax`: a SyntaxError's own text repeats the file and line, given apart."""
    text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    return f"{type(exc).__name__}: {text}"


class HookConfig:
    """Stands in for gunicorn's server.cfg: every resolved setting as an attribute."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.settings = dict(values)
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        # Settings corral does not have read as None, as an unset gunicorn setting would.
        return None


class HookServer:
    """Stands in for gunicorn's Arbiter in hooks: server.cfg, server.log, server.pid."""

    def __init__(self, cfg: HookConfig, master_pid: int) -> None:
        self.cfg = cfg
        self.log = logging.getLogger("corral.hooks")
        self.pid = master_pid
        self.num_workers = cfg.workers
        self.proc_name = cfg.proc_name or "corral"


class HookWorker:
    """Stands in for gunicorn's Worker in hooks: worker.pid, worker.ppid, worker.age, worker.log, worker.cfg."""

    def __init__(self, cfg: HookConfig, master_pid: int) -> None:
        self.cfg = cfg
        self.log = logging.getLogger("corral.hooks")
        self.pid = os.getpid()
        self.ppid = master_pid
        self.age = int(SETTINGS.get("age", SLOT))
        self.slot = SLOT
        self.timeout = cfg.timeout
        self.alive = True
        self.booted = False
        self.app: Any = None
        self.wsgi: Any = None


class Hooks:
    """gunicorn's worker-side server hooks from the config file, run at the moments gunicorn runs them."""

    def __init__(self, settings: dict[str, Any] | None) -> None:
        self.functions: dict[str, Callable[..., Any]] = {}
        if not settings:
            return
        cfg = HookConfig(settings.get("cfg", {}))
        master_pid = int(settings.get("master_pid", os.getppid()))
        self.server = HookServer(cfg, master_pid)
        self.worker = HookWorker(cfg, master_pid)
        module = load_config_module(str(settings["file"]))
        for name in settings.get("names", []):
            function = getattr(module, name, None)
            if callable(function):
                self.functions[name] = function

    def run(self, name: str, *, server: bool, fatal: bool) -> None:
        """Calls one hook; a failing start-up hook fails the boot, as in gunicorn, later ones are logged."""
        function = self.functions.get(name)
        if function is None:
            return
        try:
            function(self.server, self.worker) if server else function(self.worker)
        except BaseException as exc:  # noqa: BLE001 - the hook is user code
            if fatal:
                report_failure("startup", exc, f"the server hook {name} failed")
                os._exit(EXIT_BOOT_FAILURE)
            logging.getLogger("corral.hooks").exception(f"the server hook {name} failed")


def load_config_module(path: str) -> types.ModuleType:
    """Runs the config file again in this worker to get its hook functions (functions cannot be sent)."""
    import importlib
    import importlib.util

    if path.startswith("python:"):
        return importlib.import_module(path[len("python:"):])
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location("__config__", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # The master already showed what the config file prints when it read it; once is enough.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        spec.loader.exec_module(module)
    return module


HOOKS: Hooks = Hooks(None)


def load_env_file() -> None:
    """uvicorn's --env-file: loaded before the app is imported, as uvicorn's Config loads it."""
    env_file = SETTINGS.get("uvicorn", {}).get("env_file")
    if env_file:
        from dotenv import load_dotenv  # uvicorn[standard] brings python-dotenv; uvicorn imports it the same way

        load_dotenv(dotenv_path=env_file)


def report_failure(kind: str, exc: BaseException | None, message: str) -> None:
    if exc is None:
        text = LOG_HANDLER.last_traceback or ""
    elif kind == "app-load":
        text = app_traceback(exc)
    else:
        text = "".join(traceback.format_exception(exc))
    summary = f"{message}: {type(exc).__name__}: {exc}" if exc is not None else message
    logging.getLogger("corral.worker").error(summary + ("\n" + text if text else ""))
    extra: dict[str, Any] = {"exception": exception_summary(exc), **error_location(exc)} if exc is not None else {}
    CONTROL.send("boot_error", kind=kind, message=summary, traceback=text, **extra)


def build_server(app: Any) -> Any:
    import uvicorn

    options: dict[str, Any] = dict(SETTINGS.get("uvicorn", {}))
    options.setdefault("timeout_graceful_shutdown", SETTINGS.get("graceful_timeout"))
    # Each worker is one uvicorn process; without this, uvicorn.Config parses $WEB_CONCURRENCY
    # itself and fails on corral's "auto".
    options.setdefault("workers", 1)
    # A user's --log-config replaces corral's JSON records, as it replaces uvicorn's default logging.
    log_config = options.pop("log_config", None)
    if isinstance(options.get("headers"), list):
        options["headers"] = [tuple(header) for header in options["headers"]]
    # uvicorn's access log is replaced by corral's, which also has the duration and the size.
    config = uvicorn.Config(app, log_config=log_config, access_log=False, **options)
    if SETTINGS.get("access_log", True):
        # Wrapped after uvicorn's own wrapping, so the ASGI2 detection still sees the user's app and
        # the client address read at the end is the one the proxy-headers middleware set.
        config.load()
        config.loaded_app = AccessLog(config.loaded_app)
    return CorralServer(config)


def server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, with corral's signals and reports to the master."""

        heartbeat_task: asyncio.Task[None] | None = None
        loop: asyncio.AbstractEventLoop | None = None
        retiring = False
        request_limit = draw_request_limit()

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # corral installs its own handlers and never re-raises a signal after the drain.
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            try:
                await super().startup(sockets=sockets)
            except SystemExit:
                report_failure("startup", None, "the app's lifespan start-up failed")
                raise SystemExit(EXIT_BOOT_FAILURE) from None
            if self.started and not self.should_exit:
                CONTROL.send("ready", pid=os.getpid())
                self.heartbeat_task = asyncio.get_running_loop().create_task(self.heartbeat())
                if SETTINGS.get("report_modules"):
                    report_modules()

        async def heartbeat(self) -> None:
            # Sent from the event loop on purpose: a blocked loop stops the heartbeat.
            interval = float(SETTINGS.get("heartbeat_interval", 1.0))
            while True:
                state = self.server_state
                CONTROL.send("heartbeat", requests=state.total_requests, connections=len(state.connections))
                await asyncio.sleep(interval)

        async def on_tick(self, counter: int) -> bool:
            should_exit = await super().on_tick(counter)
            if not self.retiring and self.request_limit and self.server_state.total_requests >= self.request_limit:
                # The master starts a replacement first, then drains this worker: no capacity gap.
                self.retiring = True
                CONTROL.send("retiring", reason="max-requests", requests=self.server_state.total_requests)
            return should_exit

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if self.heartbeat_task is not None:
                self.heartbeat_task.cancel()
            CONTROL.send("draining", requests=self.server_state.total_requests)
            started = time.monotonic()
            graceful = float(SETTINGS.get("graceful_timeout", 30))
            if not self.force_exit:
                await drain_without_resets(self, started + graceful)
            # What is left (long responses past the bound) is uvicorn's to cancel, in the time remaining.
            self.config.timeout_graceful_shutdown = max(0.1, graceful - (time.monotonic() - started))
            await super().shutdown(sockets=sockets)

        def begin_drain(self) -> None:
            self.should_exit = True
            # uvicorn notices should_exit at its next 0.1 s tick. Stop accepting now: in a reload or a
            # rolling restart the replacements already serve, and every request here would be old code.
            if self.loop is not None and not self.loop.is_closed():
                self.loop.call_soon_threadsafe(self.stop_accepting)

        def stop_accepting(self) -> None:
            for server in getattr(self, "servers", []):
                server.close()

        def quick_exit(self) -> None:
            self.should_exit = True
            self.force_exit = True

    return Server


CorralServer: Any = None


def report_modules() -> None:
    """Reload mode: tell the master which modules this worker imported, so a standby can preload them."""
    modules: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and name not in ("__main__", "__mp_main__"):
            modules[name] = file
    CONTROL.send("modules", modules=modules)


def sys_path_mtimes() -> dict[str, str]:
    """The modification times of the import path's directories: installing a package changes one."""
    mtimes: dict[str, str] = {}
    for entry in sys.path:
        directory = os.path.abspath(entry or ".")
        try:
            if os.path.isdir(directory):
                mtimes[directory] = str(os.stat(directory).st_mtime_ns)
        except OSError:
            continue
    return mtimes


class MasterMessages:
    """Reads the master's JSON lines from the control channel; EOF means the master is gone."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def next(self, expected_type: str) -> dict[str, Any]:
        while True:
            while b"\n" not in self.buffer:
                try:
                    chunk = os.read(self.fd, 65536)
                except InterruptedError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    os._exit(0)
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\n", 1)
            message: dict[str, Any] = json.loads(line)
            if message.get("type") == expected_type:
                return message


def wait_as_standby() -> None:
    """Reload mode's warm standby: import what the app needs from outside its own code, then wait.

    The path mtimes are taken before the imports, so a package installed meanwhile shows as a change.
    """
    global SLOT
    # A standby has nothing to drain: any stop signal ends it at once and quietly.
    for stop_signal in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(stop_signal, lambda _sig, _frame: os._exit(0))
    if CONTROL.fd is None:
        return
    # The module list comes over the channel: as an environment variable it could pass the kernel's limit.
    messages = MasterMessages(CONTROL.fd)
    preload: list[str] = list(messages.next("preload").get("modules", []))
    add_app_dir_to_path()
    mtimes = sys_path_mtimes()
    started = time.monotonic()
    imported = 0
    # The worker that listed these modules has shown their import warnings already; on each reload they are noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in preload:
            try:
                __import__(name)
                imported += 1
            except BaseException:  # noqa: BLE001 - a module that will not preload is imported by the app later, or not at all
                continue
    logging.getLogger("corral.worker").debug(
        "standby preloaded %d modules in %.3f s", imported, time.monotonic() - started
    )
    CONTROL.send("standby", paths=mtimes)
    go = messages.next("go")
    SLOT = int(go.get("slot", 0))
    SETTINGS["slot"] = SLOT


def draw_request_limit() -> int:
    """gunicorn's max-requests with jitter: each worker draws its own limit; 0 means none."""
    limit = int(SETTINGS.get("max_requests") or 0)
    if limit <= 0:
        return 0
    return limit + random.randint(0, int(SETTINGS.get("max_requests_jitter") or 0))


def close_after_response(app: Any) -> Any:
    """Wraps an app so every response asks the client to close: the next request on a keep-alive
    connection is answered, with `Connection: close`, instead of finding the connection reset."""

    async def closing_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def send_with_close(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", []) if name.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await app(scope, receive, send_with_close if scope["type"] == "http" else send)

    return closing_app


async def drain_without_resets(server: Any, deadline: float) -> None:
    """Stops accepting, lets in-flight requests finish with `Connection: close`, answers the next
    request of each keep-alive connection the same way, and closes connections that stay idle
    for a short grace. gunicorn and uvicorn close idle keep-alive connections at once, which
    resets the requests clients were sending on them at that moment."""
    for listener in getattr(server, "servers", []):
        listener.close()
    idle_grace = min(1.0, float(SETTINGS.get("graceful_timeout", 30)) / 2)
    connections = server.server_state.connections
    for connection in list(connections):
        if hasattr(connection, "cycle") and hasattr(connection, "app"):
            connection.app = close_after_response(connection.app)
            cycle = connection.cycle
            if cycle is not None and not cycle.response_complete:
                cycle.keep_alive = False
        else:
            connection.shutdown()  # a websocket: uvicorn sends close code 1012
    idle_since: dict[Any, float] = {}
    while connections and time.monotonic() < deadline and not server.force_exit:
        now = time.monotonic()
        for connection in list(connections):
            cycle = getattr(connection, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                idle_since.pop(connection, None)
            elif now - idle_since.setdefault(connection, now) >= idle_grace:
                connection.transport.close()
        await asyncio.sleep(0.05)


def install_signal_handlers(server: Any) -> None:
    interrupts = {"count": 0}
    graceful_timeout = float(SETTINGS.get("graceful_timeout", 30))

    def on_term(_sig: int, _frame: object) -> None:
        server.begin_drain()
        # The drain is bounded even if the app's shutdown hangs.
        timer = threading.Timer(graceful_timeout + 2.0, lambda: os._exit(0))
        timer.daemon = True
        timer.start()

    def on_interrupt(_sig: int, _frame: object) -> None:
        interrupts["count"] += 1
        if interrupts["count"] > 1:
            os._exit(0)
        HOOKS.run("worker_int", server=False, fatal=False)
        server.quick_exit()
        timer = threading.Timer(1.0, lambda: os._exit(0))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_interrupt)
    signal.signal(signal.SIGQUIT, on_interrupt)
    # The master stops and resumes sessions itself; the terminal's job-control signals are not ours.
    signal.signal(signal.SIGTTIN, signal.SIG_IGN)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGWINCH, signal.SIG_IGN)
    if "worker_abort" in HOOKS.functions:
        install_abort_hook()


def install_abort_hook() -> None:
    """SIGABRT (the master's hung-worker abort) dumps the stacks, runs worker_abort, then dies of SIGABRT.

    faulthandler cannot chain a Python handler on SIGABRT, so with this hook the dump is made from
    Python: a worker stuck inside C code never gets here, and the master's SIGKILL follows as usual.
    """

    def on_abort(_sig: int, _frame: object) -> None:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        HOOKS.run("worker_abort", server=False, fatal=False)
        signal.signal(signal.SIGABRT, signal.SIG_DFL)
        os.abort()

    signal.signal(signal.SIGABRT, on_abort)


def load_hooks() -> None:
    global HOOKS
    try:
        HOOKS = Hooks(SETTINGS.get("hooks"))
    except BaseException as exc:  # noqa: BLE001 - the config file is user code
        report_failure("startup", exc, "cannot load the server hooks from the config file")
        os._exit(EXIT_BOOT_FAILURE)


def main() -> int:
    global CorralServer
    die_with_parent()
    # SIGABRT from the master (a hung worker) dumps every thread's stack to stderr, then dies.
    faulthandler.enable(file=sys.stderr, all_threads=True)
    configure_logging(str(SETTINGS.get("log_level", "info")))
    sockets = inherited_sockets()
    CorralServer = server_class()
    if SETTINGS.get("standby"):
        wait_as_standby()
    # Started after the standby's wait: that wait reads the same channel for its "go".
    CONTROL.watch_for_master_exit()
    started = time.monotonic()
    load_hooks()
    HOOKS.run("post_fork", server=True, fatal=True)
    load_env_file()
    app = load_app()
    if HOOKS.functions:
        HOOKS.worker.app = HOOKS.worker.wsgi = app
        HOOKS.worker.booted = True
    CONTROL.send("loaded", seconds=round(time.monotonic() - started, 4))
    HOOKS.run("post_worker_init", server=False, fatal=True)
    try:
        server = build_server(app)
        install_signal_handlers(server)
        server.run(sockets=sockets)
        HOOKS.run("worker_exit", server=True, fatal=False)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if code != 0:
            if code != EXIT_BOOT_FAILURE:
                report_failure("startup", None, f"uvicorn exited during start-up with code {code}")
            return EXIT_BOOT_FAILURE
        return 0
    except Exception as exc:  # noqa: BLE001 - whatever uvicorn raises at start is a boot failure
        report_failure("startup", exc, "the worker failed to start")
        return EXIT_BOOT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
