"""corral's worker entry: runs uvicorn on listen sockets inherited from the corral master.

The master runs this file (src/worker/python.ts WORKER_ENTRY); the worker itself is the corral_runtime
package beside it, which Python finds because it puts this file's directory first on sys.path.
Settings come as JSON in CORRAL_WORKER_CONFIG; reports go to the master over the control channel;
log records are pino-compatible JSON lines on a record channel of their own (stdout and stderr are the
app's text). Standard library and uvicorn only. `--check-app` imports the app only (corral --check-config).

Exit codes (corral_runtime/protocol.py EXIT_CODES, decided in corral_runtime/main.py): 0 after a
drain, 3 when start-up fails, 4 when the app cannot be imported.
"""

from __future__ import annotations

import os
import sys

from corral_runtime.fork_child import exit_forked_worker, is_forked_worker
from corral_runtime.main import main

if __name__ == "__main__":
    code = main(sys.argv[1:])
    if code != 0:
        # A failed boot ends at once: a non-daemon thread the app's import or a hook started must not
        # keep it alive (main has reported the failure on the channels, which are written whole).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if is_forked_worker():
        exit_forked_worker(code)
    sys.exit(code)
