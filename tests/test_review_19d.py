"""Review of issue 19's third session (a transaction's BEGIN, opener and first read in one message): the edges
that message folding must keep as they were."""

from dataclasses import dataclass

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from scorer_fast.db import audit, sql
from scorer_fast.db.transactions import run_durable
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import INTERNAL_AUTH, Background, count_rows
from tests.test_prepared_optin import database_options

A = "0x" + "a" * 40


class _Rollback(Exception):
    pass


def test_a_rolled_back_savepoint_as_first_statement_keeps_the_rest_in_the_transaction(committed_db):
    """BEGIN travels with a SAVEPOINT as well: after a failed nested block the outer block's writes are still in
    its transaction, and its rollback leaves nothing."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    insert = "INSERT INTO registry_passport (address, community_id, requires_calculation) VALUES (%s, %s, false)"
    with pytest.raises(_Rollback):
        with transaction.atomic():
            with pytest.raises(IntegrityError), transaction.atomic():
                sql.execute(insert, [A, community.id])
                sql.execute(insert, [A, community.id])
            sql.execute(insert, ["0x" + "b" * 40, community.id])
            assert connection.connection.info.transaction_status.name == "INTRANS"
            raise _Rollback()
    assert count_rows("registry_passport") == 0


def test_a_durable_transaction_that_writes_first_is_atomic_and_holds_the_lock(committed_db):
    """A write as the transaction's first statement goes after BEGIN and the opener: inside the transaction,
    under the address lock, with the transaction's timeouts."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    insert = "INSERT INTO registry_passport (address, community_id, requires_calculation) VALUES (%s, %s, false)"
    seen: dict[str, object] = {}

    def work() -> None:
        sql.execute(insert, [A, community.id])
        seen["locks"] = sql.one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        seen["timeout"] = sql.one("SELECT current_setting('statement_timeout')")
        raise _Rollback()

    with pytest.raises(_Rollback):
        run_durable(work, lock_address=A)
    assert count_rows("registry_passport") == 0
    assert seen["locks"] == (1,) and seen["timeout"] != ("0",)


def test_the_audit_transaction_is_repeatable_read_and_read_only(committed_db):
    with transaction.atomic():
        audit.begin_read_only()
        assert sql.one("SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')") == (
            "repeatable read",
            "on",
        )


@dataclass(frozen=True)
class _Value:
    value: int


def test_a_lock_key_with_percent_and_quote_travels_with_a_read_that_has_parameters(committed_db):
    """The opener is literal SQL in the text of a statement that brings its own parameters: its `%` and quotes
    must reach the server as they are."""
    key = "odd%s'key%"
    read = run_durable(lambda: sql.fetch_one(_Value, "SELECT %s::int AS value", [7], only_reads=True), lock_address=key)
    assert read == _Value(7)


def test_executemany_as_a_transactions_first_statement_stays_in_the_transaction(committed_db):
    community = factories.community(weights={"Google": 1}, threshold="1")
    insert = "INSERT INTO registry_passport (address, community_id, requires_calculation) VALUES (%s, %s, false)"
    with pytest.raises(_Rollback):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.executemany(insert, [[A, community.id], ["0x" + "b" * 40, community.id]])
            raise _Rollback()
    assert count_rows("registry_passport") == 0


def test_a_durable_transaction_that_sent_nothing_leaves_no_opener_for_the_next_one(committed_db):
    """A durable transaction that ended before its first statement: its opener (and address lock) does not travel
    with the next transaction, whose first statement may have to come first (the audit's SET TRANSACTION)."""

    def nothing() -> None:
        raise _Rollback()

    with pytest.raises(_Rollback):
        run_durable(nothing, lock_address=A)
    with transaction.atomic():
        audit.begin_read_only()
        assert sql.one("SELECT current_setting('transaction_isolation')") == ("repeatable read",)
    assert sql.one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()") == (0,)


def test_after_the_live_rows_contradicted_a_guess_the_next_score_uses_the_fresh_read(committed_db, client):
    """A contradicted guess is replaced by the fresh read, parsed stamps included: the next score checks the new
    guess once and does not start over again."""
    community = factories.community(weights={"Google": 1, "Ens": 2}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    url = f"/internal/score/v2/{community.id}/{A}"
    assert client.get(url, **INTERNAL_AUTH).json()["score"] == "1.00000"
    assert client.get(url, **INTERNAL_AUTH).json()["score"] == "1.00000"  # the guess is parsed and kept
    factories.cache_stamp(A, signed_stamp(A, "Ens"))
    assert client.get(url, **INTERNAL_AUTH).json()["score"] == "3.00000"  # contradicted, read again, remembered
    with CaptureQueriesContext(connection) as capture:
        assert client.get(url, **INTERNAL_AUTH).json()["score"] == "3.00000"
    reads = [query["sql"] for query in capture.captured_queries if "AS passport_id" in query["sql"]]
    assert len(reads) == 1, reads


def test_eight_concurrent_warm_scores_of_one_address_agree_and_leave_one_set_of_rows(committed_db, client):
    """c=8 on one address: most openers are refused and their reads run again after the lock; every answer is the
    same score and registry_stamp holds the stamps once."""
    community = factories.community(weights={"Google": 1, "Ens": 2}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    factories.cache_stamp(A, signed_stamp(A, "Ens"))
    url = f"/internal/score/v2/{community.id}/{A}"
    assert client.get(url, **INTERNAL_AUTH).json()["score"] == "3.00000"
    connection.forget_contention()
    calls = [Background(lambda: client.get(url, **INTERNAL_AUTH)) for _ in range(8)]
    responses = [call.result() for call in calls]
    assert [(r.status_code, r.json()["score"]) for r in responses] == [(200, "3.00000")] * 8
    assert count_rows("registry_stamp") == 2 and count_rows("registry_score") == 1


def test_an_error_in_the_opening_message_rolls_back_and_leaves_nothing_for_the_next_transaction(committed_db):
    with pytest.raises(DataError):
        run_durable(lambda: sql.fetch_one(_Value, "SELECT 1 / 0 AS value", only_reads=True), lock_address=A)
    assert connection.connection.info.transaction_status.name == "IDLE"
    locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    assert sql.one(locks) == (0,)  # autocommit again: the failed transaction was rolled back, its lock released

    def read() -> tuple:
        return (sql.fetch_one(_Value, "SELECT 2 AS value", only_reads=True), sql.one(locks))

    assert run_durable(read, lock_address=A) == (_Value(2), (1,))


def test_with_the_prepared_opt_in_one_opener_statement_serves_every_address(committed_db):
    with database_options(server_side_binding=True, prepare_threshold=1):
        for address in ["0x" + "1" * 40, "0x" + "2" * 40]:
            for _ in range(3):
                run_durable(lambda: sql.one("SELECT 1"), lock_address=address)
        prepared = [row[0] for row in sql.rows("SELECT statement FROM pg_prepared_statements")]
    assert not [statement for statement in prepared if "scorer_fast:address:0x" in statement], prepared


def test_a_durable_transaction_that_sent_nothing_leaves_no_deadline_for_the_next_statement(committed_db):
    """The opener's deadline ends with its transaction: outside a request (a management command) a transaction
    whose work failed before its first statement does not put the next, long statement under the deadline."""
    configured = connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"]
    connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"] = 0.3
    try:
        with pytest.raises(ZeroDivisionError):
            run_durable(lambda: 1 / 0, lock_address=A)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.6)")
    finally:
        connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"] = configured
