"""Dying with the master: no orphan may keep serving a port or talking to systemd."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from .failures import MasterGone


def die_with_parent(master_pid: int) -> None:
    """Ask Linux to SIGKILL this process when the master dies, even if its event loop is blocked.
    MasterGone when the master has died already."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    # The master may have died between the spawn and prctl.
    if master_pid and os.getppid() != master_pid:
        raise MasterGone()
