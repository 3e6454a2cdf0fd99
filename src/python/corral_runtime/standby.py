"""Reload mode: the modules report for the master, and the warm standby that preloads them."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import warnings
from typing import TYPE_CHECKING

from .channel import ControlChannel, MasterMessages
from .loading import add_app_dir_to_path

if TYPE_CHECKING:
    from .context import WorkerContext


def report_modules(control: ControlChannel) -> None:
    """Reload mode: tell the master which modules this worker imported, so a standby can preload them."""
    modules: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and name not in ("__main__", "__mp_main__"):
            modules[name] = file
    control.send("modules", modules=modules)


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


# Reload mode's fork server: the import path's mtimes before it imported anything. Its held children
# inherit them and report them as theirs: a package installed after the fork server's imports (and
# before the child's fork) must show as a change, as it would for a spawned standby.
# Empty elsewhere (the import path always has a directory).
IMPORT_PATH_AT_PRELOAD: dict[str, str] = {}


def snapshot_import_path() -> None:
    """Reload mode's fork server, before its imports: what its held children report (see above)."""
    IMPORT_PATH_AT_PRELOAD.clear()
    IMPORT_PATH_AT_PRELOAD.update(sys_path_mtimes())


def wait_as_standby(context: WorkerContext) -> None:
    """Reload mode's warm standby: import what the app needs from outside its own code, then wait for
    the master's "go", which gives it its slot. MasterGone when the channel ends first.

    The path mtimes are taken before the imports, so a package installed meanwhile shows as a change;
    a child held by reload mode's fork server reports the fork server's, taken before its imports.
    The report names the modules this process imported itself: for a held child, those its fork
    server lacks (the master then starts a fork server that preloads them).
    """
    # A standby has nothing to drain: any stop signal ends it at once and quietly. Immediate on
    # purpose: an exception raised from the handler could land inside a preload below, whose
    # `except BaseException` would swallow it.
    for stop_signal in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(stop_signal, lambda _sig, _frame: os._exit(0))
    control = context.control
    if control.fd is None:
        return
    # The module list comes over the channel: as an environment variable it could pass the kernel's limit.
    messages = MasterMessages(control.fd)
    preload: list[str] = list(messages.next("preload").get("modules", []))
    add_app_dir_to_path(context.settings)
    mtimes = dict(IMPORT_PATH_AT_PRELOAD) or sys_path_mtimes()
    started = time.monotonic()
    imported: list[str] = []
    # The worker that listed these modules has shown their import warnings already; on each reload they are noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in preload:
            if name in sys.modules:
                continue
            try:
                __import__(name)
                imported.append(name)
            except BaseException:  # noqa: BLE001 - a module that will not preload is imported by the app later, or not at all
                continue
    logging.getLogger("corral.worker").debug(
        "standby preloaded %d modules in %.3f s", len(imported), time.monotonic() - started
    )
    control.send("standby", paths=mtimes, imported=imported)
    go = messages.next("go")
    # The hooks' worker, built after this, reads it (the master labels the records itself).
    context.slot = int(go.get("slot", 0))
