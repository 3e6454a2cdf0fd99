"""gunicorn's worker-side server hooks from the config file, with stand-ins for gunicorn's objects."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import types
from collections.abc import Callable
from typing import Any

from . import config_module, settings
from .failures import report_failure
from .settings import EXIT_BOOT_FAILURE, SETTINGS


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
        # Read at construction, after a standby's "go" has set the slot.
        self.age = int(SETTINGS.get("age", settings.SLOT))
        self.slot = settings.SLOT
        self.timeout = cfg.timeout
        self.alive = True
        self.booted = False
        self.app: Any = None
        self.wsgi: Any = None


class Hooks:
    """gunicorn's worker-side server hooks from the config file, run at the moments gunicorn runs them."""

    def __init__(self, hook_settings: dict[str, Any] | None) -> None:
        self.functions: dict[str, Callable[..., Any]] = {}
        if not hook_settings:
            return
        cfg = HookConfig(hook_settings.get("cfg", {}))
        master_pid = int(hook_settings.get("master_pid", os.getppid()))
        self.server = HookServer(cfg, master_pid)
        self.worker = HookWorker(cfg, master_pid)
        module = load_config_module(str(hook_settings["file"]))
        for name in hook_settings.get("names", []):
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
    """Runs the config file again in this worker to get its hook functions (functions cannot be sent);
    a worker class defined in the file comes from the same module (worker_class.py)."""
    loaded = sys.modules.get("__config__")
    if loaded is not None and not path.startswith("python:"):
        return loaded
    return config_module.load_config_module(path, quiet=True)


# Rebound by load_hooks: read it as hooks.HOOKS, never import a copy.
HOOKS: Hooks = Hooks(None)


def load_hooks() -> None:
    global HOOKS
    try:
        HOOKS = Hooks(SETTINGS.get("hooks"))
    except BaseException as exc:  # noqa: BLE001 - the config file is user code
        report_failure("startup", exc, "cannot load the server hooks from the config file")
        os._exit(EXIT_BOOT_FAILURE)


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
