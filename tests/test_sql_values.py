"""How the scoring statements bind and load values: text[] parameters as array literals (scorer_fast/db/sql.py),
timestamptz through psycopg's C loader on the scoring cursor (scorer_fast/db/postgresql/base.py)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from psycopg.pq import Format
from psycopg.types.datetime import TimestamptzLoader

from scorer_fast.db import sql

TIMESTAMPTZ_OID = 1184
HOSTILE_TEXTS = ['q"uote', "back\\slash", '\\"', "a,b", "{b}", "}", "  spaced  ", "NULL", "üñí", "'s'", "t\tab", "n\nl"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "values", [[], [""], ["v1:abc", "12.345"], HOSTILE_TEXTS], ids=["empty", "blank", "plain", "hostile"]
)
def test_a_text_array_literal_reads_back_as_the_same_strings(values):
    assert sql.one("SELECT %s::text[]", [sql.text_array(values)]) == (values,)
    assert sql.one("SELECT %s::text[] = %s::text[]", [sql.text_array(values), values]) == (True,)


@pytest.mark.django_db
def test_the_scoring_cursor_loads_timestamps_in_c_with_the_values_djangos_cursor_loads():
    statement = "SELECT '2026-12-04 20:05:17.123456+03'::timestamptz, ARRAY['1999-01-01 00:00:00.5+00'::timestamptz]"
    scoring_row = sql.one(statement)
    with connection.cursor() as cursor:
        cursor.execute(statement)
        django_row = cursor.fetchone()

    assert (
        scoring_row
        == django_row
        == (
            datetime(2026, 12, 4, 17, 5, 17, 123456, tzinfo=UTC),
            [datetime(1999, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)],
        )
    )
    assert scoring_row[0].tzinfo is UTC and scoring_row[1][0].tzinfo is UTC
    c_loader = connection.connection.adapters._get_optimised(TimestamptzLoader)
    assert c_loader is not TimestamptzLoader  # the binary build's
    assert sql.cursor().cursor.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT) is c_loader


@pytest.mark.django_db
def test_a_session_in_another_time_zone_keeps_djangos_loader():
    connection.ensure_connection()
    djangos = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Europe/Paris'")
        try:
            raw = connection.connection.cursor()
            connection._load_timestamptz_in_c(raw)
            assert raw.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT) is djangos
        finally:
            cursor.execute("SET TIME ZONE 'UTC'")
