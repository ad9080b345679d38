"""Native output through the JSON logs.

didkit's Rust code reports a panic (junk proofs trigger them) by writing straight to file descriptor 2, with a
backtrace: plain text that would bypass the JSON log format and its redaction. In a serving process, fd 2 is a
pipe whose lines are logged, redacted, as JSON records of the `native.stderr` logger. The log handler writes to
stdout (settings.LOGGING), so the relay never feeds itself.
"""

import logging
import os
import threading

logger = logging.getLogger("native.stderr")
_installed = False
_install_lock = threading.Lock()


def relay_native_stderr() -> None:
    """Idempotent; call once per process after logging is configured (scorer_fast/wsgi.py does)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        threading.Thread(target=_pump, args=(read_fd,), name="native-stderr", daemon=True).start()
        _installed = True


def _pump(read_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                try:
                    logger.warning(line)
                except Exception:  # never let the relay die: a full pipe would block every writer to stderr
                    pass
