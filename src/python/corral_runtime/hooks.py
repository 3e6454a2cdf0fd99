"""gunicorn's worker-side server hooks from the config file, with stand-ins for gunicorn's objects."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from .config_module import load_config_module
from .failures import BootFailure


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

    def __init__(self, cfg: HookConfig, master_pid: int, *, pid: int, slot: int, age: int) -> None:
        self.cfg = cfg
        self.log = logging.getLogger("corral.hooks")
        self.pid = pid
        self.ppid = master_pid
        self.age = age
        self.slot = slot
        self.timeout = cfg.timeout
        self.alive = True
        self.booted = False
        self.app: Any = None
        self.wsgi: Any = None


class Hooks:
    """gunicorn's worker-side server hooks from the config file, run at the moments gunicorn runs them.

    Hooks() has none: a worker without a config file's hooks, or one whose hooks are not loaded yet.
    """

    def __init__(self) -> None:
        self.functions: dict[str, Callable[..., Any]] = {}
        self.server: HookServer | None = None
        self.worker: HookWorker | None = None

    @classmethod
    def load(cls, hook_settings: dict[str, Any], *, pid: int, slot: int, age: int) -> Hooks:
        """Runs the config file in this worker to get its hook functions (functions cannot be sent).
        Built after a standby's "go", so worker.slot and worker.age are the slot's."""
        hooks = cls()
        cfg = HookConfig(hook_settings.get("cfg", {}))
        master_pid = int(hook_settings.get("master_pid", os.getppid()))
        hooks.server = HookServer(cfg, master_pid)
        hooks.worker = HookWorker(cfg, master_pid, pid=pid, slot=slot, age=age)
        module = load_config_module(str(hook_settings["file"]), quiet=True)
        for name in hook_settings.get("names", []):
            function = getattr(module, name, None)
            if callable(function):
                hooks.functions[name] = function
        return hooks

    def booted(self, app: Any) -> None:
        """The app is imported: worker.app and worker.wsgi, as gunicorn's worker has them after load_wsgi."""
        if self.worker is not None:
            self.worker.app = self.worker.wsgi = app
            self.worker.booted = True

    def run(self, name: str, *, server: bool, fatal: bool) -> None:
        """Calls one hook; a failing start-up hook fails the boot (BootFailure), as in gunicorn, later ones are logged."""
        function = self.functions.get(name)
        if function is None:
            return
        try:
            function(self.server, self.worker) if server else function(self.worker)
        except BaseException as exc:  # noqa: BLE001 - the hook is user code
            if fatal:
                raise BootFailure(f"the server hook {name} failed", exc) from exc
            logging.getLogger("corral.hooks").exception(f"the server hook {name} failed")


def load_hooks(settings: dict[str, Any], *, pid: int, slot: int) -> Hooks:
    """The config file's hooks the master listed (none without them); a file that fails to run fails the boot."""
    hook_settings = settings.get("hooks")
    if not hook_settings:
        return Hooks()
    try:
        return Hooks.load(hook_settings, pid=pid, slot=slot, age=int(settings.get("age", slot)))
    except BaseException as exc:  # noqa: BLE001 - the config file is user code
        raise BootFailure("cannot load the server hooks from the config file", exc) from exc


def install_abort_hook(hooks: Hooks) -> None:
    """SIGABRT (the master's hung-worker abort) dumps the stacks, runs worker_abort, then dies of SIGABRT.

    faulthandler cannot chain a Python handler on SIGABRT, so with this hook the dump is made from
    Python: a worker stuck inside C code never gets here, and the master's SIGKILL follows as usual.
    """

    def on_abort(_sig: int, _frame: object) -> None:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        hooks.run("worker_abort", server=False, fatal=False)
        signal.signal(signal.SIGABRT, signal.SIG_DFL)
        os.abort()

    signal.signal(signal.SIGABRT, on_abort)
