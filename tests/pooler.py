"""pgbouncer in transaction mode between the suite and PostgreSQL, as production runs behind RDS Proxy / pgbouncer.

scripts/test's pooled pass sets SCORER_POOLER=pgbouncer: tests/conftest.py then starts pgbouncer (Debian's
package, not on PyPI) in front of the test database, with a pool of 3 server connections and a login retry of
1 s, and points Django's connection at it. Helpers that must see real backends (another writer, the observer of
lock waits, the tests that block logins) connect directly (`direct_params()`).

pgbouncer refuses to run as root: as root it runs as the `pgserver` user, which owns the embedded server's data
folder and Unix socket (settings/embedded_pg.py).
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tests.lambda_runtime import free_port

POOL_SIZE = 3
LOGIN_RETRY_SECONDS = 1
# pgbouncer's own cut (120 s by default), well above the service's bound: the tests prove the service's deadline,
# and a regression fails in seconds, not minutes.
QUERY_WAIT_TIMEOUT_SECONDS = 10
_START_TIMEOUT_SECONDS = 10
_direct: dict[str, Any] | None = None


def requested() -> bool:
    return os.environ.get("SCORER_POOLER", "") == "pgbouncer"


def binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(path, os.X_OK)), None
    )


def active() -> bool:
    """The suite's Django connection goes through pgbouncer (the pooled pass)."""
    return _direct is not None


def direct_params() -> dict[str, Any] | None:
    """The database's own settings while the connection goes through the pooler, else None."""
    return _direct


@dataclass
class Pgbouncer:
    port: int
    folder: Path
    process: subprocess.Popen

    def admin(self, command: str) -> list[tuple]:
        """A command on pgbouncer's admin console (simple query protocol only, hence ClientCursor)."""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, dbname="pgbouncer", user="postgres", autocommit=True,
            cursor_factory=psycopg.ClientCursor,
        ) as console:  # fmt: skip
            return console.execute(command).fetchall()

    def log(self) -> str:
        return (self.folder / "pgbouncer.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start(database: dict[str, Any]) -> Pgbouncer:
    """pgbouncer on 127.0.0.1 (a port of SCORER_PORTS), transaction mode, in front of `database` (Django's
    settings dict: a Unix socket folder or a host in HOST)."""
    executable = binary()
    if executable is None:
        raise RuntimeError("pgbouncer is not installed (scripts/test installs Debian's package when root)")
    folder = Path(tempfile.mkdtemp(prefix="scorer_fast_pgbouncer_"))
    port = free_port()
    server_port = database["PORT"] or "5432"
    user, password = database["USER"] or "postgres", database["PASSWORD"] or ""
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={database["HOST"] or "localhost"} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
admin_users = {user}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 200
server_login_retry = {LOGIN_RETRY_SECONDS}
query_wait_timeout = {QUERY_WAIT_TIMEOUT_SECONDS}
ignore_startup_parameters = extra_float_digits
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""
    )
    (folder / "users.txt").write_text(f'"{user}" "{password}"\n')
    run_as = _unprivileged_user()
    if run_as is not None:
        for path in (folder, *folder.iterdir()):
            os.chown(path, run_as.pw_uid, run_as.pw_gid)
    process = subprocess.Popen(
        [executable, str(folder / "pgbouncer.ini")],
        user=run_as.pw_uid if run_as else None,
        group=run_as.pw_gid if run_as else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pooler = Pgbouncer(port=port, folder=folder, process=process)
    _wait_until_listening(pooler)
    return pooler


def route_through(pooler: Pgbouncer, settings_dict: dict[str, Any]) -> None:
    """Point Django's connection settings (one dict shared by every thread's connection) at the pooler."""
    global _direct
    _direct = dict(settings_dict)
    settings_dict.update(HOST="127.0.0.1", PORT=str(pooler.port))


def route_directly(settings_dict: dict[str, Any]) -> None:
    global _direct
    if _direct is not None:
        settings_dict.update(HOST=_direct["HOST"], PORT=_direct["PORT"])
    _direct = None


def _unprivileged_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("pgserver", "postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("pgbouncer refuses to run as root and no unprivileged user was found")


def _wait_until_listening(pooler: Pgbouncer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while True:
        try:
            pooler.admin("SHOW VERSION")
            return
        except psycopg.Error:
            if pooler.process.poll() is not None or time.monotonic() > deadline:
                log = pooler.log() if (pooler.folder / "pgbouncer.log").exists() else ""
                pooler.stop()
                raise RuntimeError(f"pgbouncer did not start: {log[-2000:]}") from None
            time.sleep(0.05)
