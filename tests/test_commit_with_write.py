"""A transaction's COMMIT in the message of its last write (`sql.execute_together(…, commit=True)`, the backend's
`commit_with_next_statement`, scorer_fast/db/postgresql/base.py): on real commits, seen from another connection."""

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from scorer_fast.db import sql
from scorer_fast.db.sql import Statement
from scorer_fast.models import Passport
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import INTERNAL_AUTH, Background, _connect, count_rows, foreign_writer, wait_until_blocked_by

A = "0x" + "a" * 40

INSERT_LIST = Statement("INSERT INTO account_addresslist (name) VALUES (%s)", ["folded"])
INSERT_ANOTHER = Statement("INSERT INTO account_addresslist (name) VALUES (%s)", ["folded, too"])


def committed_elsewhere() -> int:
    with foreign_writer() as other:
        return other.execute("SELECT COUNT(*) FROM account_addresslist WHERE name LIKE 'folded%'").fetchone()[0]


def test_the_last_write_carries_the_commit_and_django_sends_none(committed_db):
    with CaptureQueriesContext(connection) as capture, transaction.atomic(durable=True):
        sql.one("SELECT 1")
        sql.execute_together([INSERT_LIST, INSERT_ANOTHER], commit=True)
        assert committed_elsewhere() == 2  # committed before the block ends
    sent = [query["sql"] for query in capture.captured_queries]
    assert sent[-1].startswith("WITH w0 AS") and sent[-1].endswith(";\nCOMMIT") and "COMMIT" not in sent[:-1]
    assert sql.one("SELECT 2") == (2,) and connection.get_autocommit()  # the connection goes on as usual


def test_a_statement_after_the_commit_is_refused_not_run_in_a_transaction_of_its_own(committed_db):
    with pytest.raises(ProgrammingError, match="after its transaction's COMMIT"):
        with transaction.atomic(durable=True):
            sql.one("SELECT 1")
            sql.execute_together([INSERT_LIST], commit=True)
            sql.execute_together([INSERT_LIST])
    assert committed_elsewhere() == 1
    assert sql.one("SELECT 2") == (2,)


def test_a_write_whose_probe_finds_a_row_fails_whole_and_skips_the_commit(committed_db):
    with pytest.raises(sql.ProbeFound), transaction.atomic(durable=True):
        sql.one("SELECT 1")
        sql.execute_together([INSERT_LIST], unless=Statement("SELECT 1", []), commit=True)
    assert count_rows("account_addresslist") == 0 and committed_elsewhere() == 0
    with transaction.atomic(durable=True):  # the next transaction works: nothing was left open
        sql.one("SELECT 1")
        sql.execute_together([INSERT_LIST], unless=Statement("SELECT 1 WHERE false", []), commit=True)
    assert committed_elsewhere() == 1


@pytest.mark.django_db
def test_in_a_savepoint_the_commit_is_left_to_the_outer_block():
    """The test's own transaction holds this block as a savepoint: COMMIT is not the block's to send."""
    with transaction.atomic():
        sql.one("SELECT 1")
        sql.execute_together([INSERT_LIST], commit=True)
        sql.one("SELECT 1")  # still inside the test's transaction
    assert count_rows("account_addresslist") == 1 and committed_elsewhere() == 0


def test_on_commit_hooks_run_after_a_folded_commit(committed_db):
    ran = []
    with transaction.atomic(durable=True):
        sql.one("SELECT 1")
        transaction.on_commit(lambda: ran.append(1))
        sql.execute_together([INSERT_LIST], commit=True)
    assert ran == [1]


def test_a_savepoint_after_a_folded_commit_is_refused(committed_db):
    with pytest.raises(ProgrammingError), transaction.atomic(durable=True):
        sql.one("SELECT 1")
        sql.execute_together([INSERT_LIST], commit=True)
        with transaction.atomic():
            pass
    assert sql.one("SELECT 2") == (2,)


def test_a_deferred_constraint_failing_at_the_folded_commit_rolls_back(committed_db):
    """COMMIT itself fails (a deferred check): the statement raises, Django's rollback is a no-op on the server."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE wt26_parent (id int PRIMARY KEY);"
            "CREATE TABLE wt26_child (id int, parent int REFERENCES wt26_parent DEFERRABLE INITIALLY DEFERRED)"
        )
    try:
        with pytest.raises(IntegrityError), transaction.atomic(durable=True):
            sql.one("SELECT 1")
            sql.execute_together([Statement("INSERT INTO wt26_child VALUES (1, 42)", [])], commit=True)
        assert sql.one("SELECT COUNT(*) FROM wt26_child") == (0,)
        with transaction.atomic(durable=True):
            sql.one("SELECT 1")
            sql.execute_together([Statement("INSERT INTO wt26_parent VALUES (1)", [])], commit=True)
        assert sql.one("SELECT COUNT(*) FROM wt26_parent") == (1,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE wt26_child; DROP TABLE wt26_parent")


def test_a_connection_killed_during_the_folded_write_is_a_503_and_the_next_request_works(committed_db):
    community = factories.community(weights={"Google": 1}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    url = f"/internal/score/v2/{community.id}/{A}"
    client = Client()
    assert client.get(url, **INTERNAL_AUTH).status_code == 200
    assert client.get(url, **INTERNAL_AUTH).status_code == 200
    passport = Passport.objects.get()
    with foreign_writer() as original:
        original.execute("UPDATE registry_score SET status = 'PROCESSING' WHERE passport_id = %s", [passport.id])

        def kill_the_waiter() -> None:
            wait_until_blocked_by(original)
            with _connect(autocommit=True) as observer:
                observer.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    [original.info.backend_pid],
                )

        killer = Background(kill_the_waiter)
        response = client.get(url, **INTERNAL_AUTH)
        killer.result()
        original.rollback()
    assert response.status_code == 503, response.content
    assert connection._committed_early is False
    assert client.get(url, **INTERNAL_AUTH).status_code == 200
