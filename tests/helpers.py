"""Small assertions shared by endpoint tests."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

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
def failing_event_inserts() -> Iterator[None]:
    """A real database failure at the pipeline's last write: a trigger that raises on registry_event inserts."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION fail_event() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$ LANGUAGE plpgsql;"
            "CREATE TRIGGER fail_event BEFORE INSERT ON registry_event FOR EACH ROW EXECUTE FUNCTION fail_event();"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER fail_event ON registry_event; DROP FUNCTION fail_event();")
