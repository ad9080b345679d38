"""gunicorn as production runs it: sync workers, one process per core by default, no state between them."""

import os
import sys

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = None  # the app logs one JSON line per request (scorer_fast.middleware)
errorlog = "-"


def worker_exit(server, worker):
    """didkit's native runtime can crash the interpreter at shutdown (SIGSEGV/SIGABRT): leave directly, with the
    status the worker is exiting with (gunicorn calls this from a `finally` around its sys.exit), so the master
    still sees a boot failure (status 3) and stops instead of respawning forever."""
    exc = sys.exc_info()[1]
    code = exc.code if isinstance(exc, SystemExit) else 0
    status = code if isinstance(code, int) else 1 if code else 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
