"""The worker's life from start to exit: the order of every step, and the one place exit codes are decided."""

from __future__ import annotations

import faulthandler
import sys
from typing import Any

from .context import WorkerContext, read_settings
from .failures import AppLoadFailure, BootFailure, MasterGone, app_traceback, failure_summary, report_failure
from .hooks import load_hooks
from .loading import load_app, load_env_file, load_worker_class
from .logs import configure_logging
from .parent import die_with_parent
from .protocol import EXIT_CODES
from .server import build_server, inherited_sockets, install_signal_handlers, server_class
from .standby import wait_as_standby


def main(argv: list[str]) -> int:
    """`corral_worker.py` runs a worker; `corral_worker.py --check-app` is `corral --check-config`'s import
    of the app; `corral_worker.py --fork-server` is a generation's fork server, whose forked children
    come back here as workers."""
    settings = read_settings()
    if argv == ["--check-app"]:
        return check_app(settings)
    if argv == ["--fork-server"]:
        from .fork_child import become_worker
        from .fork_server import serve

        outcome = serve(settings)
        if isinstance(outcome, int):
            return outcome
        # A forked child, out of the fork server's loop: from here on a worker like a spawned one.
        try:
            settings = become_worker(outcome)
        except MasterGone:
            return EXIT_CODES["ok"]
    context = WorkerContext.from_settings(settings)
    # As gunicorn's arbiter maps a worker's boot errors: every early end of the worker is an exception
    # of failures.py, and only here does it become an exit code.
    try:
        run(context)
    except MasterGone:
        return EXIT_CODES["ok"]
    except AppLoadFailure as failure:
        report_failure(context, failure)
        return EXIT_CODES["app_load_failure"]
    except BootFailure as failure:
        report_failure(context, failure)
        return EXIT_CODES["boot_failure"]
    except Exception as exc:  # noqa: BLE001 - whatever else fails before or while uvicorn starts is a boot failure
        report_failure(context, BootFailure("the worker failed to start", exc))
        return EXIT_CODES["boot_failure"]
    return EXIT_CODES["ok"]


def run(context: WorkerContext) -> None:
    """A worker's life, in order; it returns after the drain, or raises (failures.py) to end early."""
    settings = context.settings
    if not settings.get("forked"):
        # A forked worker's parent is its fork server, whose death it must survive; it dies with the
        # master through its control channel's EOF (below).
        die_with_parent(int(settings.get("master_pid", 0)))
    # SIGABRT from the master (a hung worker) dumps every thread's stack to stderr, then dies.
    faulthandler.enable(file=sys.stderr, all_threads=True)
    configure_logging(str(settings.get("log_level", "info")), context.log_handler)
    sockets = inherited_sockets(settings)
    corral_server = server_class(context)
    if settings.get("standby"):
        wait_as_standby(context)
    # Started after the standby's wait: that wait reads the same channel for its "go".
    context.control.watch_for_master_exit()
    context.hooks = load_hooks(settings, pid=context.pid, slot=context.slot)
    # gunicorn imports the worker class before it forks: before post_fork, after the config file.
    class_kwargs = load_worker_class(settings)
    context.hooks.run("post_fork", server=True, fatal=True)
    load_env_file(settings)
    app = load_app(settings)
    context.hooks.booted(app)
    context.hooks.run("post_worker_init", server=False, fatal=True)
    uvicorn_server = build_server(corral_server, context, app, class_kwargs)
    install_signal_handlers(context, uvicorn_server)
    try:
        uvicorn_server.run(sockets=sockets)
    except SystemExit as exc:
        # uvicorn's own exits come from its start-up (server.py turns the lifespan's into a BootFailure).
        code = exc.code if isinstance(exc.code, int) else 1
        if code != 0:
            raise BootFailure(f"uvicorn exited during start-up with code {code}") from None
        return
    context.hooks.run("worker_exit", server=True, fatal=False)


def check_app(settings: dict[str, Any]) -> int:
    """--check-config: the worker's own loading steps (env file, app dir, the app's import), reported as text."""
    try:
        load_env_file(settings)
        load_app(settings)
    except AppLoadFailure as failure:
        if failure.error is not None:
            print(app_traceback(failure.error), end="", file=sys.stderr)
        print(failure_summary(failure), file=sys.stderr)
        return EXIT_CODES["app_load_failure"]
    return EXIT_CODES["ok"]
