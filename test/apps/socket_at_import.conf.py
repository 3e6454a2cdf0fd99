"""gunicorn's advice for a connection opened at import under --preload: open the worker's own in post_fork."""

import sys


def post_fork(server, worker):
    app = sys.modules.get("socket_at_import")
    if app is not None:
        app.connect()
