"""The worker's life from start to exit: the order of every step is here."""

from __future__ import annotations

import faulthandler
import os
import sys
import time

from . import hooks, server
from .channel import CONTROL
from .failures import report_failure
from .loading import load_app, load_env_file, load_worker_class
from .logs import configure_logging
from .parent import die_with_parent
from .settings import EXIT_BOOT_FAILURE, SETTINGS
from .standby import wait_as_standby


def main() -> int:
    die_with_parent(int(SETTINGS.get("master_pid", 0)))
    # SIGABRT from the master (a hung worker) dumps every thread's stack to stderr, then dies.
    faulthandler.enable(file=sys.stderr, all_threads=True)
    configure_logging(str(SETTINGS.get("log_level", "info")))
    sockets = server.inherited_sockets()
    server.CorralServer = server.server_class()
    if SETTINGS.get("standby"):
        wait_as_standby()
    # Started after the standby's wait: that wait reads the same channel for its "go".
    CONTROL.watch_for_master_exit()
    started = time.monotonic()
    hooks.load_hooks()
    # gunicorn imports the worker class before it forks: before post_fork, after the config file.
    class_kwargs = load_worker_class()
    hooks.HOOKS.run("post_fork", server=True, fatal=True)
    load_env_file()
    app = load_app()
    if hooks.HOOKS.functions:
        hooks.HOOKS.worker.app = hooks.HOOKS.worker.wsgi = app
        hooks.HOOKS.worker.booted = True
    CONTROL.send("loaded", seconds=round(time.monotonic() - started, 4))
    hooks.HOOKS.run("post_worker_init", server=False, fatal=True)
    try:
        uvicorn_server = server.build_server(app, class_kwargs)
        server.install_signal_handlers(uvicorn_server)
        uvicorn_server.run(sockets=sockets)
        hooks.HOOKS.run("worker_exit", server=True, fatal=False)
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
