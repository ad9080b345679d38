"""Tests added by the adversarial review where a deliberate breakage survived the suite."""

import json
import re
from datetime import UTC, datetime

import pytest

from scorer_fast import lambda_handler
from scorer_fast.models import AccountAPIKey, AccountAPIKeyAnalytics, Event, Passport, Score
from tests import factories
from tests.test_admin import ADMIN, page, scored, viewer  # noqa: F401 (fixtures used by name)

# The Redis fixtures of tests/test_rate_limits.py (the embedded server), used by name below.
from tests.test_rate_limits import LIMITED, key_with_rate, submit

pytestmark = pytest.mark.django_db
ADDRESS = "0x" + "a" * 40


@pytest.mark.usefixtures("rate_limits_on")
def test_submit_passport_counts_before_reading_the_body_and_a_refusal_scores_nothing(client):
    """Every authenticated request counts, a malformed one too; the refused request must not score (a limit
    checked after the scoring would write the rows and then answer 429)."""
    owner = factories.account()
    community = factories.community(owner=owner, weights={"Google": 1})
    key = key_with_rate(owner, "3/h")
    bad = [client.post("/registry/submit-passport", "[", content_type="application/json", HTTP_X_API_KEY=key)]
    assert [response.status_code for response in bad] == [400]
    assert [submit(client, community, key).status_code for _ in range(2)] == [200, 200]
    rows = (Passport.objects.count(), Score.objects.count(), Event.objects.count())
    last_scored = Score.objects.get().last_score_timestamp

    refused = submit(client, community, key)

    assert (refused.status_code, json.loads(refused.content)) == (429, LIMITED)
    assert (Passport.objects.count(), Score.objects.count(), Event.objects.count()) == rows
    assert Score.objects.get().last_score_timestamp == last_scored


@pytest.mark.usefixtures("rate_limits_on")
def test_a_refused_v2_request_scores_nothing(client):
    owner = factories.account()
    community = factories.community(owner=owner, weights={"Google": 1})
    key = key_with_rate(owner, "1/h")
    url = f"/v2/stamps/{community.id}/score/{ADDRESS}"
    assert client.get(url, HTTP_X_API_KEY=key).status_code == 200
    rows = (Passport.objects.count(), Score.objects.count(), Event.objects.count())
    last_scored = Score.objects.get().last_score_timestamp

    refused = client.get(url, HTTP_X_API_KEY=key)

    assert (refused.status_code, json.loads(refused.content)) == (429, LIMITED)
    assert (Passport.objects.count(), Score.objects.count(), Event.objects.count()) == rows
    assert Score.objects.get().last_score_timestamp == last_scored


@pytest.fixture
def support(request):
    """A read-only support engineer's client and the scored world of tests/test_admin.py."""
    return request.getfixturevalue("viewer"), request.getfixturevalue("scored")


def test_the_api_key_list_holds_no_piece_of_a_hash_not_even_url_quoted(support):
    """A linked row would put the primary key (`<prefix>.<PBKDF2 hash>`) into its URL, quoted by the admin
    (`$` → `_24`), which a search for the whole hash does not find."""
    staff, world = support
    key = factories.api_key(world[0].account, storage="pbkdf2")
    row = AccountAPIKey.objects.get(prefix=key.split(".")[0])
    html = page(staff, f"{ADMIN}/accountapikey/")
    assert row.prefix in html
    pieces = [piece for piece in re.split(r"[^A-Za-z0-9]", row.hashed_key.rsplit("$", 1)[1]) if len(piece) >= 8]
    assert pieces and [piece for piece in pieces if piece in html] == []


def test_a_usage_row_page_masks_every_secret_header_an_older_writer_stored(support):
    staff, world = support
    key = factories.api_key(world[0].account)
    usage = AccountAPIKeyAnalytics.objects.create(
        api_key=AccountAPIKey.objects.get(prefix=key.split(".")[0]),
        path="/v2/x",
        created_at=datetime.now(UTC),
        status_code=200,
        headers={"X-API-KEY": key, "Authorization": "Bearer jwt-secret", "cookie": "sessionid=cookie-secret"},
    )
    html = page(staff, f"{ADMIN}/accountapikeyanalytics/{usage.pk}/change/")
    assert html.count("***") >= 3
    assert key not in html and "jwt-secret" not in html and "cookie-secret" not in html


def test_a_bad_lambda_event_is_logged_without_its_values(caplog):
    """The log line names the event's top-level keys only: a broken event can still carry an API key or a JWT."""
    event = {"httpMethod": 5, "path": "/v2/x", "headers": {"x-api-key": "key-secret", "authorization": "jwt-secret"}}
    response = lambda_handler.handler(event, None)
    assert response["statusCode"] == 400
    logged = [str(record.__dict__) for record in caplog.records]
    assert logged and not [line for line in logged if "key-secret" in line or "jwt-secret" in line]


@pytest.fixture
def partner_key():
    owner = factories.account()
    return factories.community(owner=owner, weights={"Google": 1}), factories.api_key(owner)


def test_submit_passport_checks_the_address_before_the_scorer_id(client, partner_key):
    """As the original: a bad address is 400 even when the scorer id is missing (422) or unknown (404)."""
    _community, key = partner_key
    for body in ({"address": "0x123"}, {"address": "0x123", "scorer_id": 999_999}):
        response = client.post(
            "/registry/submit-passport", json.dumps(body), content_type="application/json", HTTP_X_API_KEY=key
        )
        assert (response.status_code, response.json()) == (400, {"error": "Invalid address."})


def test_the_usage_row_of_a_request_that_failed_in_the_database_names_the_error(client, partner_key, settings):
    """A DatabaseError is no ScorerError: the row's `error` comes from the generic branch (decision 18)."""
    settings.FF_API_ANALYTICS = True
    _community, key = partner_key
    body = json.dumps({"address": ADDRESS, "scorer_id": "a\x00b"})
    response = client.post("/registry/submit-passport", body, content_type="application/json", HTTP_X_API_KEY=key)
    assert response.status_code == 400
    row = AccountAPIKeyAnalytics.objects.get()
    assert row.status_code == 400 and row.error and "NUL" in row.error
    assert key not in row.error
