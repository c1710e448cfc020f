"""A small WSGI app: GET / answers at once, GET /slow after SLOW_SECONDS (default 2)."""

import os
import time


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or os.environ.get("SLOW_SECONDS", "2")))
    body = f"ok {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
