"""POST /registry/submit-passport on real commits: one nonce, two concurrent requests; the usage row of a request
whose database statement failed records the status actually sent."""

import logging

import pytest
from django.db import connection
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
