"""A transaction's COMMIT in the message of its last write (`sql.execute_together(…, commit=True)`, the backend's
`commit_with_next_statement`, scorer_fast/db/postgresql/base.py): on real commits, seen from another connection."""

import pytest
from django.db import ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext

from scorer_fast.db import sql
from scorer_fast.db.sql import Statement
from tests.helpers import count_rows, foreign_writer

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
