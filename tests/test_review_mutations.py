"""Tests added by the adversarial review where a deliberate breakage survived the suite."""

import json

import pytest

from scorer_fast.models import Event, Passport, Score
from tests import factories

# The Redis fixtures of tests/test_rate_limits.py (the embedded server), used by name below.
from tests.test_rate_limits import LIMITED, key_with_rate, rate_limits_on, redis_url, submit  # noqa: F401

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
