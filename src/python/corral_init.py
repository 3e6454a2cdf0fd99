"""corral-init: what tini does, for a corral that finds itself PID 1 of a container with no init.

Node reaps only the children it started (libuv waits for their pids), never the orphans the app's
subprocesses leave behind: as PID 1 they would stay zombies until the pid limit. So corral, as PID 1,
runs this process in front of the real master (src/platform/pid-one.ts): it reaps every child that is not
the master, forwards the signals an operator sends to the master, and exits with the master's code.
It runs no app code, so a waitpid(-1) here steals no exit status from the app.

    python -I -S corral_init.py NODE [NODE OPTIONS] CORRAL_JS [CORRAL ARGS]

It is PID 1 itself when Node could replace itself with it (process.execve); otherwise the Node
process stays PID 1 and this one is its child, a child subreaper (PR_SET_CHILD_SUBREAPER), so the
orphans of everything below it come here all the same. Standard library only.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Dict, Optional, Sequence

NAME = "corral-init"
# gunicorn's signals: each one means something to the master.
FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)
PR_SET_CHILD_SUBREAPER = 36


def name_this_process() -> None:
    # The master reads its parent's name to know it runs under this init (USR2 is refused there).
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(NAME)
    except OSError:
        pass


def become_subreaper() -> None:
    """Orphans go to the nearest subreaper ancestor: this process, for everything below the master."""
    if os.getpid() == 1:
        return  # PID 1 is its namespace's reaper already
    import ctypes  # only here: it costs a few MB that PID 1 does not need

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")


def foreground_terminal() -> Optional[int]:
    """A terminal whose foreground process group is ours (docker run -it), else None."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                return fd
        except OSError:
            continue
    return None


def master_environment(meant_for: Sequence[int], master: int) -> Dict[str, str]:
    """systemd's variables that name the process they are for (socket activation, the watchdog):
    when they name this init or the Node that started it, they are meant for the master."""
    env = dict(os.environ)
    for name in ("LISTEN_PID", "WATCHDOG_PID"):
        if env.get(name) in {str(pid) for pid in meant_for}:
            env[name] = str(master)
    return env


def start_master(command: Sequence[str], terminal: Optional[int]) -> int:
    meant_for = (os.getpid(), os.getppid())
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        if terminal is not None:
            # ^C goes to the terminal's foreground group: make that the master's alone, or the master
            # would get each INT twice (from the terminal and forwarded), and a second INT kills at once.
            os.setpgid(0, 0)
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            os.tcsetpgrp(terminal, os.getpid())
        # Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive exec: give the master the defaults.
        for signum in (*FORWARDED, signal.SIGCHLD, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.execve(command[0], list(command), master_environment(meant_for, os.getpid()))
    except BaseException as exc:  # noqa: BLE001 - nothing may return into the parent's loop
        os.write(2, f"{NAME}: cannot start {command[0]}: {exc}\n".encode())
    os._exit(127)


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)  # a shell's (and tini's) convention
    return os.WEXITSTATUS(status)


def reap(master: int) -> Optional[int]:
    """Waits for every child that has ended; returns the master's wait status if it was one of them."""
    found: Optional[int] = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if pid == 0:
            return found
        if pid == master:
            found = status


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2:
        print(f"usage: {NAME} COMMAND [ARGS...]", file=sys.stderr)
        return 2
    name_this_process()
    try:
        become_subreaper()
    except OSError as exc:
        print(f"{NAME}: {exc}: orphaned processes will not be reaped", file=sys.stderr, flush=True)
    # Blocked before the fork, so none is lost before the loop; taken one by one with sigwaitinfo.
    watched = {*FORWARDED, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    master = start_master(argv[1:], foreground_terminal())
    while True:
        info = signal.sigwaitinfo(watched)
        if info.si_signo == signal.SIGCHLD:
            status = reap(master)
            if status is not None:
                # Whatever else still runs ends with the container (PID 1's exit kills its namespace).
                return exit_code(status)
            continue
        try:
            os.kill(master, info.si_signo)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
