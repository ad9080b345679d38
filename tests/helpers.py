"""Small assertions shared by endpoint tests."""

import hashlib
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connection

from tests import pooler

# The header GET /internal/score/v2/... requires (settings/test.py sets the token).
INTERNAL_AUTH = {"HTTP_AUTHORIZATION": "scorer-fast-test-internal-token"}

ISO_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")


def without_timestamp(body: dict[str, Any]) -> dict[str, Any]:
    """The score object minus last_score_timestamp (checked separately for its format)."""
    assert body["last_score_timestamp"] is None or ISO_MICROS.match(body["last_score_timestamp"]), body
    return {key: value for key, value in body.items() if key != "last_score_timestamp"}


def iso(expiration_z: str) -> str:
    """What Python's datetime.fromisoformat(...).isoformat() makes of a credential's `...Z` date."""
    return expiration_z.replace("Z", "+00:00")


def count_rows(table: str, where: str = "TRUE", params: tuple = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)
        return cursor.fetchone()[0]


@contextmanager
def failing_event_inserts(sqlstate: str = "P0001") -> Iterator[None]:
    """A real database failure at the pipeline's last write: a trigger that raises `sqlstate` on registry_event
    inserts (P0001: plpgsql's own raise_exception)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION fail_event() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = "
            f"'{sqlstate}'; END $$ LANGUAGE plpgsql;"
            "CREATE TRIGGER fail_event BEFORE INSERT ON registry_event FOR EACH ROW EXECUTE FUNCTION fail_event();"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER fail_event ON registry_event; DROP FUNCTION fail_event();")


def _connect(*, autocommit: bool) -> psycopg.Connection:
    """A connection of its own to the database itself (not through the pooler of the pooled pass: the real
    backend pids are what lock waits are observed by)."""
    params = pooler.direct_params() or connection.settings_dict
    kwargs = {"dbname": params["NAME"], "user": params["USER"], "password": params["PASSWORD"], "host": params["HOST"]}
    if params["PORT"]:
        kwargs["port"] = params["PORT"]
    return psycopg.connect(**kwargs, autocommit=autocommit)


@contextmanager
def foreign_writer() -> Iterator[psycopg.Connection]:
    """A second writer on its own connection (the original service, which takes none of our locks); the test
    decides when its transaction commits."""
    conn = _connect(autocommit=False)
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


def wait_until_blocked_by(blocker: psycopg.Connection, timeout: float = 10.0) -> None:
    """Return once another backend waits for a lock the blocker holds (the interleaving under test is reached)."""
    deadline = time.monotonic() + timeout
    with _connect(autocommit=True) as observer:
        while time.monotonic() < deadline:
            sql = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
            row = observer.execute(sql, [blocker.info.backend_pid]).fetchone()
            if row and row[0]:
                return
            time.sleep(0.01)
    raise AssertionError("no backend waited on the foreign writer's lock")


class Background:
    """Run a call on another thread (with its own database connection); `result()` joins and returns it."""

    def __init__(self, target: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = target()
            except BaseException as exc:  # re-raised in the test's thread
                self._error = exc
            finally:
                connection.close()

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def result(self, timeout: float = 30.0) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the background call did not finish"
        if self._error is not None:
            raise self._error
        return self._value


def original_counter_key(prefix: str, limit: int, period: int) -> str:
    """The Redis key the original's django-ratelimit 4.1 increments (group "registry", method ALL, cache
    KEY_PREFIX "" and VERSION 1), written out by hand so that a change of group, key or cache settings fails here."""
    now = int(time.time())
    window = now - now % period + zlib.crc32(prefix.encode()) % period
    if window < now:
        window += period
    digest = hashlib.sha256(f"registry{limit}/{period}s{prefix}{window}".encode()).hexdigest()
    return f":1:rl:{digest}"
