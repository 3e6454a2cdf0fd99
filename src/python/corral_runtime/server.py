"""The uvicorn server: corral's Server subclass on the inherited sockets, and its signal handlers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .drain import draw_request_limit, drain_without_resets
from .failures import BootFailure
from .hooks import install_abort_hook
from .logs import AccessLog
from .standby import report_modules

if TYPE_CHECKING:
    from .context import WorkerContext


def inherited_sockets(settings: dict[str, Any]) -> list[socket.socket]:
    # socket.socket(fileno=) detects family and type, so TCP keeps TCP_NODELAY and unix stays unix.
    sockets = [socket.socket(fileno=int(fd)) for fd in settings.get("listen_fds", [])]
    for sock in sockets:
        # Spawned inheritable: an app's `os.system("job &")` or Popen(close_fds=False) would keep the
        # port listening after corral stops, and a restarted corral could not bind it.
        sock.set_inheritable(False)
    return sockets


def build_server(server_class: type, context: WorkerContext, app: Any, class_kwargs: dict[str, Any]) -> Any:
    """server_class: from server_class(), made before a standby waits."""
    import uvicorn

    settings = context.settings
    options: dict[str, Any] = dict(settings.get("uvicorn", {}))
    # A worker class's CONFIG_KWARGS that the master could not carry: applied last, as gunicorn does.
    options.update(class_kwargs)
    options.setdefault("timeout_graceful_shutdown", settings.get("graceful_timeout"))
    # Each worker is one uvicorn process; without this, uvicorn.Config parses $WEB_CONCURRENCY
    # itself and fails on corral's "auto".
    options.setdefault("workers", 1)
    # A user's --log-config replaces corral's JSON records, as it replaces uvicorn's default logging.
    log_config = options.pop("log_config", None)
    if isinstance(options.get("headers"), list):
        options["headers"] = [tuple(header) for header in options["headers"]]
    # uvicorn's access log is replaced by corral's, which also has the duration and the size.
    config = uvicorn.Config(app, log_config=log_config, access_log=False, **options)
    if settings.get("access_log", True):
        # Wrapped after uvicorn's own wrapping, so the ASGI2 detection still sees the user's app and
        # the client address read at the end is the one the proxy-headers middleware set.
        config.load()
        config.loaded_app = AccessLog(config.loaded_app, context.records)
    return server_class(config)


def server_class(context: WorkerContext) -> type:
    """corral's uvicorn.Server subclass. Made before a standby waits, so uvicorn is imported (and the
    max-requests limit drawn) ahead of the app."""
    import uvicorn

    settings = context.settings
    control = context.control
    graceful_timeout = float(settings.get("graceful_timeout", 30))

    class Server(uvicorn.Server):
        """uvicorn's server, with corral's signals and reports to the master."""

        heartbeat_task: asyncio.Task[None] | None = None
        loop: asyncio.AbstractEventLoop | None = None
        retiring = False
        request_limit = draw_request_limit(settings)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # corral installs its own handlers and never re-raises a signal after the drain.
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            try:
                await super().startup(sockets=sockets)
            except SystemExit:
                # uvicorn exits after logging why (the traceback the report then carries).
                raise BootFailure("the app's lifespan start-up failed") from None
            if self.started and not self.should_exit:
                control.send("ready")
                self.heartbeat_task = asyncio.get_running_loop().create_task(self.heartbeat())
                if settings.get("report_modules"):
                    report_modules(control)

        async def heartbeat(self) -> None:
            # Sent from the event loop on purpose: a blocked loop stops the heartbeat.
            interval = float(settings.get("heartbeat_interval", 1.0))
            while True:
                state = self.server_state
                control.send("heartbeat", requests=state.total_requests, connections=len(state.connections))
                await asyncio.sleep(interval)

        async def on_tick(self, counter: int) -> bool:
            should_exit = await super().on_tick(counter)
            if not self.retiring and self.request_limit and self.server_state.total_requests >= self.request_limit:
                # The master starts a replacement first, then drains this worker: no capacity gap.
                self.retiring = True
                control.send("retiring", reason="max-requests", requests=self.server_state.total_requests)
            return should_exit

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if self.heartbeat_task is not None:
                self.heartbeat_task.cancel()
            started = time.monotonic()
            if not self.force_exit:
                await drain_without_resets(self, started + graceful_timeout, graceful_timeout)
            # What is left (long responses past the bound) is uvicorn's to cancel, in the time remaining.
            self.config.timeout_graceful_shutdown = max(0.1, graceful_timeout - (time.monotonic() - started))
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


def install_signal_handlers(context: WorkerContext, server: Any) -> None:
    """TERM drains, INT and QUIT stop at once. Their backstops end the process with os._exit on purpose:
    they fire when the app's shutdown hangs (or a second INT comes), when no exception could end it."""
    interrupts = {"count": 0}
    graceful_timeout = float(context.settings.get("graceful_timeout", 30))
    hooks = context.hooks

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
        hooks.run("worker_int", server=False, fatal=False)
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
    if "worker_abort" in hooks.functions:
        install_abort_hook(hooks)
