"""corral's worker entry: runs uvicorn on listen sockets inherited from the corral master.

The master runs this file (src/python.ts WORKER_ENTRY); the worker itself is the corral_runtime
package beside it, which Python finds because it puts this file's directory first on sys.path.
Settings come as JSON in CORRAL_WORKER_CONFIG; reports go to the master over the control channel;
log records are pino-compatible JSON lines on a record channel of their own (stdout and stderr are the
app's text). Standard library and uvicorn only.

Exit codes: 0 after a drain, 3 when start-up fails, 4 when the app cannot be imported.
"""

from __future__ import annotations

import sys

from corral_runtime.main import main

if __name__ == "__main__":
    sys.exit(main())
