"""The control channel's vocabulary and the worker's exit codes: the contract with the master.

src/worker/protocol.ts says the same on the TypeScript side; a test imports this module, dumps it as
JSON and fails when the two disagree. Messages are JSON objects, one a line, with `type` and the
fields named here (sorted). A message the master does not act on is not sent.

Fields a message may leave out: boot_error's `exception`, `file` and `line` (known only when there is
an exception, and a location for it).
"""

from __future__ import annotations

# Worker → master.
WORKER_MESSAGES: dict[str, tuple[str, ...]] = {
    # The lifespan start-up is done and the worker listens: the boot is over.
    "ready": (),
    # From a task on the event loop, so a blocked loop stops it: the master's hang detection.
    "heartbeat": ("connections", "requests"),
    # max-requests reached: the master starts a replacement, then drains this worker.
    "retiring": ("reason", "requests"),
    # Why the boot failed, sent before the exit with boot_failure or app_load_failure.
    "boot_error": ("exception", "file", "kind", "line", "message", "traceback"),
    # Reload mode: a warm standby has preloaded its modules; paths are the import path's mtimes,
    # imported the modules it imported itself (a forked one: those its fork server had not).
    "standby": ("imported", "paths"),
    # Reload mode: the worker's sys.modules (name → file), once after ready, for the next standby.
    "modules": ("modules",),
}

# Master → worker (only a warm standby reads the channel).
MASTER_MESSAGES: dict[str, tuple[str, ...]] = {
    # The modules a standby imports ahead of the app.
    "preload": ("modules",),
    # The standby becomes the worker of this slot (and generation) and boots.
    "go": ("generation", "slot"),
}

# Fork server → master, on the fork server's own control pipe (fork_server.py `report`).
FORK_SERVER_MESSAGES: dict[str, tuple[str, ...]] = {
    # The preload is done: how many modules are loaded, how long it took, and the threads other than
    # the main one (any thread makes forking unsafe: the master starts this generation with spawn).
    "ready": ("modules", "preloaded", "seconds", "sockets", "threads"),
    # A fork request found threads running: this worker, and the generation's next, are spawned instead.
    "unsafe": ("threads", "token"),
    # The worker of this token is the child with this pid.
    "forked": ("pid", "token"),
    # os.fork() failed (EAGAIN, ENOMEM): the master counts it as a failed spawn.
    "fork_failed": ("error", "token"),
    # A child was reaped: its exit code, or the signal that ended it.
    "exited": ("code", "pid", "signal"),
    # --preload: the app could not be imported in the fork server (sent before its exit with app_load_failure).
    "boot_error": ("exception", "file", "kind", "line", "message", "traceback"),
    # A refresh is done: what the new generation's code added to the preload (same fields as ready).
    "refreshed": ("modules", "preloaded", "seconds", "sockets", "threads"),
    # A refresh found files it had preloaded changed on disk (a package upgraded, the --env-file
    # edited): this fork server cannot serve the new generation, the master starts a fresh one.
    "stale": ("changed", "files"),
}

# Master → fork server.
FORK_SERVER_REQUESTS: dict[str, tuple[str, ...]] = {
    # Fork one worker with these settings; its channels connect back with the token.
    "fork": ("settings", "token"),
    # Signal a child, unless it has been reaped already (the fork server is its parent: no recycled pid).
    "signal": ("pid", "signal"),
    # A newer generation serves: exit once the last child is gone.
    "retire": (),
    # Serve a new code generation too (its preload is this one's: no --preload, the same settings):
    # check that nothing preloaded changed on disk, then import what the new code adds.
    "refresh": ("settings",),
    # Reload mode: the modules the app's workers imported, sent at once, read before the preload's end.
    "preload": ("modules",),
}

# A forked worker's connections to the master's channel socket, each opened with a hello line
# {"token": …, "stream": …}: the control channel, the record channel, then its stdout and stderr.
CHANNEL_STREAMS: tuple[str, ...] = ("control", "records", "stdout", "stderr")

EXIT_CODES: dict[str, int] = {
    # A drained worker, or one whose master is gone.
    "ok": 0,
    # Start-up failed: a server hook, the lifespan start-up, uvicorn's own start.
    "boot_failure": 3,
    # The app (or a -k worker class) could not be imported.
    "app_load_failure": 4,
}
