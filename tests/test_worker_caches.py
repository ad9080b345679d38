"""What a worker reuses between requests, and the bound after which a change made elsewhere takes effect
(docs/decisions.md): an authenticated API key (API_KEY_CACHE_SECONDS) and a community's scorer setup
(SCORER_SETUP_CACHE_SECONDS). Real time, with short bounds: the bound is what is under test."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scorer_fast.models import AccountAPIKey, BinaryWeightedScorer, Community
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import INTERNAL_AUTH

A = "0x" + "a" * 40
BOUND = 0.4  # seconds


def _sent(capture: CaptureQueriesContext) -> list[str]:
    return [" ".join(query["sql"].split()) for query in capture.captured_queries]


@pytest.fixture
def scored(db, settings):
    settings.API_KEY_CACHE_SECONDS = BOUND
    settings.SCORER_SETUP_CACHE_SECONDS = BOUND
    owner = factories.account()
    community = factories.community(owner=owner, weights={"Google": 1, "Ens": 2}, threshold="1")
    key = factories.api_key(owner)
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    factories.cache_stamp(A, signed_stamp(A, "Ens"))
    return community, key, f"/v2/stamps/{community.id}/score/{A}"


def test_a_revoked_key_is_refused_once_the_bound_has_passed(client, scored):
    _community, key, url = scored
    assert client.get(url, HTTP_X_API_KEY=key).status_code == 200
    AccountAPIKey.objects.filter(prefix=key.split(".")[0]).update(revoked=True)

    within = client.get(url, HTTP_X_API_KEY=key)
    time.sleep(BOUND + 0.05)
    after = client.get(url, HTTP_X_API_KEY=key)

    assert within.status_code == 200  # the worker still knows the key: at most API_KEY_CACHE_SECONDS
    assert after.status_code == 401 and after.json() == {"error": "Invalid API Key."}


def test_a_cached_key_still_needs_the_whole_secret(client, scored):
    _community, key, url = scored
    assert client.get(url, HTTP_X_API_KEY=key).status_code == 200
    prefix, _, secret = key.partition(".")
    wrong = prefix + "." + ("A" if secret[0] != "A" else "B") + secret[1:]
    assert client.get(url, HTTP_X_API_KEY=wrong).status_code == 401


def test_a_changed_weight_applies_once_the_bound_has_passed(client, scored):
    community, key, url = scored
    assert client.get(url, HTTP_X_API_KEY=key).json()["score"] == "3.00000"
    BinaryWeightedScorer.objects.filter(scorer_ptr_id=community.scorer_id).update(weights={"Google": 5, "Ens": 2})

    within = client.get(url, HTTP_X_API_KEY=key).json()
    time.sleep(BOUND + 0.05)
    after = client.get(url, HTTP_X_API_KEY=key).json()

    assert within["score"] == "3.00000"  # the worker's setup: at most SCORER_SETUP_CACHE_SECONDS old
    assert after["score"] == "7.00000" and after["stamps"]["Google"]["score"] == "5.00000"


def test_the_internal_routes_share_the_bound(client, scored):
    community, _key, _url = scored
    url = f"/internal/score/v2/{community.id}/{A}"
    assert client.get(url, **INTERNAL_AUTH).json()["score"] == "3.00000"
    Community.objects.filter(pk=community.pk).update(rule="NOT_LIFO")

    within = client.get(url, **INTERNAL_AUTH)
    time.sleep(BOUND + 0.05)
    after = client.get(url, **INTERNAL_AUTH)

    assert within.status_code == 200
    assert after.status_code == 500 and after.json() == {"detail": "Failed to calculate score."}


def test_with_a_zero_bound_every_request_reads_key_and_setup(client, scored, settings):
    community, key, url = scored
    settings.API_KEY_CACHE_SECONDS = settings.SCORER_SETUP_CACHE_SECONDS = 0
    assert client.get(url, HTTP_X_API_KEY=key).status_code == 200
    BinaryWeightedScorer.objects.filter(scorer_ptr_id=community.scorer_id).update(weights={"Google": 5, "Ens": 2})
    assert client.get(url, HTTP_X_API_KEY=key).json()["score"] == "7.00000"
    AccountAPIKey.objects.filter(prefix=key.split(".")[0]).update(revoked=True)
    assert client.get(url, HTTP_X_API_KEY=key).status_code == 401


def test_a_cached_setup_still_reads_the_stamps_on_every_request(client, scored):
    """Only the setup is reused: a stamp added since the last request counts at once."""
    community, key, url = scored
    assert client.get(url, HTTP_X_API_KEY=key).json()["score"] == "3.00000"
    BinaryWeightedScorer.objects.filter(scorer_ptr_id=community.scorer_id).update(
        weights={"Google": 1, "Ens": 2, "Github": 4}
    )
    time.sleep(BOUND + 0.05)
    assert client.get(url, HTTP_X_API_KEY=key).json()["score"] == "3.00000"  # setup read again, now cached
    factories.cache_stamp(A, signed_stamp(A, "Github"))

    with CaptureQueriesContext(connection) as capture:
        body = client.get(url, HTTP_X_API_KEY=key).json()

    assert body["score"] == "7.00000"
    assert not [s for s in _sent(capture) if "account_community" in s or "account_accountapikey " in s]
