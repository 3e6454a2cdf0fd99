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
    """Reload mode's fork server, before its imports: what its held children report (see above).
    It imports ctypes too, which they use (copy_shared_pages): imported in each of them, it would be a
    module their fork server lacks, and the next workers' report would start a fork server for it."""
    IMPORT_PATH_AT_PRELOAD.clear()
    IMPORT_PATH_AT_PRELOAD.update(sys_path_mtimes())
    import ctypes  # noqa: F401


# madvise(2): fault every page of the range in, writable (Linux 5.14+); a copy-on-write page is copied.
MADV_POPULATE_WRITE = 23
# Skipped: the kernel's own mappings, and the stack (it grows on its own).
SPECIAL_MAPPINGS = ("[stack]", "[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]")


def copy_shared_pages() -> int:
    """A held child of reload mode's fork server, before its "go": copies now the pages it shares with
    the fork server, which importing the app would otherwise copy one fault at a time (every object
    it touches, by a refcount, lives on a shared page: measured, FastAPI's import and start went from
    15-27 ms to 6-10 ms after "go"). Its memory is then its own, as a spawned standby's is: in
    development, the save's latency matters more than the pages. Only the writable private mappings
    that are at least half resident are populated, so a large reservation is never filled. The bytes
    populated; 0 where madvise cannot do it (an older kernel)."""
    try:
        import ctypes

        madvise = ctypes.CDLL(None, use_errno=True).madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        madvise.restype = ctypes.c_int
        with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
            lines = smaps.read().splitlines()
    except (OSError, AttributeError):
        return 0
    copied = 0
    mapping: tuple[int, int] | None = None
    size_kb = 0
    for line in lines:
        fields = line.split()
        if not fields:
            continue
        if not fields[0].endswith(":"):
            # A mapping's header: "start-end perms offset dev inode [name]".
            start, _, end = fields[0].partition("-")
            perms = fields[1] if len(fields) > 1 else ""
            name = fields[5] if len(fields) > 5 else ""
            writable_private = len(perms) == 4 and perms[1] == "w" and perms[3] == "p"
            mapping = (int(start, 16), int(end, 16)) if writable_private and name not in SPECIAL_MAPPINGS else None
        elif fields[0] == "Size:":
            size_kb = int(fields[1])
        elif fields[0] == "Rss:" and mapping is not None:
            rss_kb = int(fields[1])
            if rss_kb > 0 and size_kb <= 2 * rss_kb:
                if madvise(mapping[0], mapping[1] - mapping[0], MADV_POPULATE_WRITE) != 0:
                    return copied
                copied += mapping[1] - mapping[0]
            mapping = None
    return copied


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
    if context.settings.get("forked"):
        started = time.monotonic()
        copied = copy_shared_pages()
        logging.getLogger("corral.worker").debug("standby copied %d bytes of its fork server's pages in %.3f s", copied, time.monotonic() - started)
    control.send("standby", paths=mtimes, imported=imported)
    go = messages.next("go")
    # The hooks' worker, built after this, reads it (the master labels the records itself).
    context.slot = int(go.get("slot", 0))
