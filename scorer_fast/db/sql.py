"""How the scoring statements run: parameterized SQL on Django's connection, through one reused cursor per
connection, with rows handed back as named, typed records built by one mapper (`fetch_one` / `fetch_all`: the
columns' names are the dataclass's field names, so a statement and its record type cannot drift apart silently).

Statements are grouped by table family: keys.py (API keys, nonces, communities and their scorers), ceramic.py
(ceramic-cache stamps), scores.py (passports, scores, registry stamps, the address lock), hash_links.py and
events.py (events, human points, API usage rows).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, TypeVar

from django.db import DataError, connection
from django.db.backends.utils import CursorWrapper

R = TypeVar("R")
Params = Sequence[Any] | dict[str, Any]


@dataclass(frozen=True)
class Statement:
    """One data-modifying statement, so that several can travel as one (`execute_together`)."""

    sql: str
    params: list[Any]


def cursor() -> CursorWrapper:
    """This connection's reusable cursor (scorer_fast/db/postgresql/base.py): one per connection, not per
    statement."""
    return connection.reusable_cursor()


def rows(sql: str, params: Params = ()) -> list[tuple]:
    c = cursor()
    c.execute(sql, params)
    return c.fetchall()


def one(sql: str, params: Params = ()) -> tuple | None:
    c = cursor()
    c.execute(sql, params)
    return c.fetchone()


def count(sql: str, params: Params = ()) -> int:
    row = one(sql, params)
    return row[0] if row else 0


def execute(sql: str, params: Params = ()) -> int:
    c = cursor()
    c.execute(sql, params)
    return c.rowcount


class ProbeFound(Exception):
    """`execute_together`'s `unless` probe found a row: the statement failed, nothing it writes is written, and the
    transaction is to be rolled back and run again (scorer_fast/db/transactions.py)."""


# What the statement casts to int when its probe finds a row: an error that names itself in the server's log.
_PROBE_FOUND = "scorer_fast: a concurrent writer changed the rows this transaction read; it is run again"
_INVALID_TEXT_REPRESENTATION = "22P02"


def execute_together(statements: Sequence[Statement], *, unless: Statement | None = None, commit: bool = False) -> None:
    """Several INSERT/UPDATE/DELETE statements in one round trip, as data-modifying CTEs of one statement. They
    run on one snapshot and do not see each other's rows: only for writes to different rows. `unless`, a SELECT
    run after them: when it returns a row, the call fails (ProbeFound), and the transaction must be rolled back,
    so the writes never land. It is a statement of its own, with its own snapshot (READ COMMITTED), taken after the
    writes' row-lock waits: what another writer committed while they waited is seen. With client-side binding it
    goes in the writes' message. `commit`: the transaction's COMMIT goes in the same message as the last of them,
    which then ends the transaction (nothing may follow in it; a failed statement skips the COMMIT)."""
    messages = [message for message in (_together(statements), _probe_check(unless)) if message is not None]
    if len(messages) == 2 and connection.sends_statements_together():
        messages = [Statement(f"{messages[0].sql};\n{messages[1].sql}", [*messages[0].params, *messages[1].params])]
    for number, message in enumerate(messages, 1):
        if commit and number == len(messages):
            connection.commit_with_next_statement()
        try:
            execute(message.sql, message.params)
        except DataError as exc:
            if getattr(exc.__cause__, "sqlstate", None) == _INVALID_TEXT_REPRESENTATION and _PROBE_FOUND in str(exc):
                raise ProbeFound() from exc
            raise


def _together(statements: Sequence[Statement]) -> Statement | None:
    if len(statements) <= 1:
        return statements[0] if statements else None
    parts = ", ".join(f"w{index} AS ({statement.sql})" for index, statement in enumerate(statements))
    return Statement(f"WITH {parts} SELECT 1", [param for statement in statements for param in statement.params])


def _probe_check(probe: Statement | None) -> Statement | None:
    """A statement that fails with a cast error naming itself when `probe` returns a row."""
    if probe is None:
        return None
    return Statement(f"SELECT CAST(CASE WHEN EXISTS ({probe.sql}) THEN '{_PROBE_FOUND}' END AS int)", probe.params)


@cache
def _field_names(record: type) -> frozenset[str]:
    return frozenset(field.name for field in fields(record))


_checked_columns: dict[tuple[type, str], list[str]] = {}


def _column_names(record: type, sql: str, c: CursorWrapper) -> list[str]:
    """The statement's column names, checked once per (record, statement text) against the record's fields."""
    names = _checked_columns.get((record, sql))
    if names is None:
        names = [column.name for column in c.description]
        if set(names) != _field_names(record) or len(names) != len(set(names)):
            expected = sorted(_field_names(record))
            raise TypeError(f"{record.__name__}: the statement returns {names}, the record has {expected}")
        _checked_columns[(record, sql)] = names
    return names


def fetch_one(record: type[R], sql: str, params: Params = (), *, only_reads: bool = False) -> R | None:
    """The first row as a `record` (a dataclass whose fields are the statement's column names), or None.
    `only_reads`: the statement writes nothing, so it may travel with its transaction's opener
    (scorer_fast/db/postgresql/base.py)."""
    c = cursor()
    if only_reads:
        connection.next_statement_only_reads()
    c.execute(sql, params)
    row = c.fetchone()
    return None if row is None else record(**dict(zip(_column_names(record, sql, c), row, strict=True)))


def fetch_all(record: type[R], sql: str, params: Params = ()) -> list[R]:
    c = cursor()
    c.execute(sql, params)
    found = c.fetchall()
    if not found:
        return []
    names = _column_names(record, sql, c)
    return [record(**dict(zip(names, row, strict=True))) for row in found]


def json_value(value: Any) -> Any:
    """Django's psycopg setup hands jsonb over as text; parse it the way the original did (floats, not Decimal)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def jsonb(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def text_array(values: Sequence[str]) -> str:
    """A text[] parameter as PostgreSQL's array literal (the statement casts it: `%s::text[]`): psycopg quotes a
    str in C, where it adapts a list element by element in Python (~25 µs a list of ten). Every element
    is quoted, with its backslashes and double quotes escaped, so no text can end an element or the array."""
    return "{" + ",".join('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values) + "}"
