"""POST /registry/submit-passport on real commits: one nonce, two concurrent requests (free-running and a fixed
interleaving); the usage row of a request whose database statement failed records the status actually sent."""

import logging
import threading
import time

import pytest
from django.db import connection, transaction
from django.test import Client

from scorer_fast.models import AccountAPIKeyAnalytics
from tests import factories
from tests.helpers import count_rows
from tests.test_integrity import run_concurrently
from tests.test_submit_passport import ADDRESS, WEIGHTS, nonce, submit
from tests.wallets import sign_nonce


def test_two_concurrent_requests_cannot_both_spend_one_nonce(committed_db):
    owner = factories.account()
    community = factories.community(owner=owner, weights=WEIGHTS)
    key = factories.api_key(owner)
    nonce("race")
    body = {"address": ADDRESS, "scorer_id": community.id, "signature": sign_nonce("race"), "nonce": "race"}

    responses = run_concurrently(2, lambda _i: submit(Client(), key, body))

    assert sorted(response.status_code for response in responses) == [200, 400]
    assert [r.json() for r in responses if r.status_code == 400] == [{"error": "Invalid nonce."}]
    assert count_rows("registry_event", "action = 'SCU'") == 1


@pytest.mark.parametrize("sqlstate, status", [("08006", 503), ("22023", 400)])
def test_the_row_records_the_status_actually_sent(committed_db, settings, sqlstate, status, caplog):
    """A lost database connection is answered 503 and a value the database refuses 400: so are their rows."""
    settings.FF_API_ANALYTICS = True
    owner = factories.account()
    community = factories.community(owner=owner, weights=WEIGHTS)
    key = factories.api_key(owner)
    client = Client()
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE FUNCTION fail_event() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = "
            f"'{sqlstate}'; END $$ LANGUAGE plpgsql; CREATE TRIGGER fail_event BEFORE INSERT ON registry_event "
            "FOR EACH ROW EXECUTE FUNCTION fail_event();"
        )
    try:
        with caplog.at_level(logging.CRITICAL):
            response = submit(client, key, {"address": ADDRESS, "scorer_id": community.id})
            v2 = client.get(f"/v2/stamps/{community.id}/score/{ADDRESS}", HTTP_X_API_KEY=key)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER fail_event ON registry_event; DROP FUNCTION fail_event();")
    assert (response.status_code, v2.status_code) == (status, status)
    rows = list(AccountAPIKeyAnalytics.objects.order_by("id").values_list("status_code", "response"))
    assert rows == [(status, response.content.decode()), (status, v2.content.decode())]


def test_a_nonce_being_spent_by_another_transaction_is_refused_once_that_commits(committed_db):
    """Deterministic interleaving: another request (or the original) has spent the nonce but not committed yet
    when this request reads it. Spending with one conditional UPDATE waits for that commit and then finds the
    nonce used; a read-then-update would spend it a second time."""
    owner = factories.account()
    community = factories.community(owner=owner, weights=WEIGHTS)
    key = factories.api_key(owner)
    nonce("held")
    body = {"address": ADDRESS, "scorer_id": community.id, "signature": sign_nonce("held"), "nonce": "held"}
    spent, release, results = threading.Event(), threading.Event(), {}

    def other_writer() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("UPDATE account_nonce SET was_used = true WHERE nonce = 'held'")
                spent.set()
                release.wait(30)
        finally:
            connection.close()

    def this_request() -> None:
        try:
            results["response"] = submit(Client(), key, body)
        finally:
            connection.close()

    writer, request = threading.Thread(target=other_writer), threading.Thread(target=this_request)
    writer.start()
    assert spent.wait(30)
    request.start()
    wait_for_a_lock_wait()
    release.set()
    writer.join(30)
    request.join(30)
    response = results["response"]
    assert (response.status_code, response.json()) == (400, {"error": "Invalid nonce."})
    assert count_rows("registry_event") == 0


def wait_for_a_lock_wait(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while count_rows("pg_stat_activity", "wait_event_type = 'Lock' AND datname = current_database()") == 0:
        assert time.monotonic() < deadline, "the request never waited for the other transaction"
        time.sleep(0.01)
