"""The embedded PostgreSQL used when DATABASE_URL is unset (development and tests).

`pgserver` ships PostgreSQL binaries in a wheel, so a machine with only Python gets a real server. The server
listens on a Unix socket inside its data folder and keeps running after the process that started it exits;
`stop()` ends it.
"""

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# A Unix socket path may not exceed ~107 bytes; deep checkouts fall back to a short folder under /tmp.
_MAX_SOCKET_DIR = 80


def data_dir() -> Path:
    return socket_safe_folder(os.environ.get("PGSERVER_DATA") or REPO_ROOT / ".pgdata", "pg")


def socket_safe_folder(path: str | Path, kind: str) -> Path:
    """The (created) folder of an embedded server's data and Unix socket: `path`, or a short folder under /tmp
    named after it when a socket inside `path` would exceed the length limit."""
    path = Path(path)
    if len(str(path)) > _MAX_SOCKET_DIR:
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
        path = Path(tempfile.gettempdir()) / f"scorer_fast_{kind}_{digest}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_running() -> str:
    """Start the embedded server if needed and return its connection URL."""
    pgserver = _import_pgserver()
    server = pgserver.get_server(data_dir(), cleanup_mode=None)
    with server._lock:  # get_server caches the handle; make sure the server behind it still runs
        server.ensure_postgres_running()
    return server.get_uri()


def stop() -> None:
    import subprocess

    _import_pgserver()
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    pgdata = data_dir()
    if not (pgdata / "postmaster.pid").exists():
        return
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError:
        pass  # already stopped


def _import_pgserver():
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI)
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver
