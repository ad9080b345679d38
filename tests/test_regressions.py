"""Behaviour that a deliberate mutation of the code once broke without failing the suite: each test here fails
for one such mutation (named in its docstring)."""

import json
from datetime import UTC, datetime

import pytest

from scorer_fast.models import (
    AccountAPIKeyAnalytics,
    BinaryWeightedScorer,
    CeramicCache,
    HumanPoints,
    Passport,
    Score,
    Stamp,
)
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import INTERNAL_AUTH
from tests.tokens import RSA_PUBLIC_PEM, rs256_token

pytestmark = pytest.mark.django_db
A, B = "0x" + "a" * 40, "0x" + "b" * 40


def v2(client, community, address, key):
    return client.get(f"/v2/stamps/{community.id}/score/{address}", HTTP_X_API_KEY=key)


@pytest.fixture
def ceramic(settings):
    settings.SIWE_JWT_PUBLIC_KEY = RSA_PUBLIC_PEM
    community = factories.community(weights={"Google": 1, "Ens": 1}, threshold="1")
    settings.CERAMIC_CACHE_SCORER_ID = community.id
    return community


def bulk(client, method: str, body, address: str = A):
    return getattr(client, method)(
        "/ceramic-cache/stamps/bulk",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {rs256_token(address)}",
    )


def test_a_raw_score_equal_to_the_threshold_passes(client):
    """Mutation: threshold `>=` → `>` (in the stored binary score or in the response's passing_score)."""
    owner = factories.account()
    community = factories.community(owner=owner, weights={"Google": 12.5, "Ens": 7.5}, threshold="20")
    for provider in ("Google", "Ens"):
        factories.cache_stamp(A, signed_stamp(A, provider))
    body = v2(client, community, A, factories.api_key(owner)).json()
    assert body["score"] == "20.00000" and body["passing_score"] is True
    stored = Score.objects.get()  # the binary score other systems read, and its evidence
    assert stored.score == 1 and stored.evidence["success"] is True


@pytest.mark.parametrize("route", ["v2", "embed", "ceramic-cache"])
def test_lifo_deduplicates_on_every_scoring_route(client, settings, route):
    """Mutation: LIFO de-duplication disabled (only /internal/score caught it)."""
    settings.SIWE_JWT_PUBLIC_KEY = RSA_PUBLIC_PEM
    owner = factories.account()
    community = factories.community(owner=owner, weights={"Google": 1}, threshold="1")
    settings.CERAMIC_CACHE_SCORER_ID = community.id
    key = factories.api_key(owner)
    for address in (A, B):
        factories.cache_stamp(address, signed_stamp(address, "Google", nullifiers=["v0:one-human"]))
    assert client.get(f"/internal/score/v2/{community.id}/{A}", **INTERNAL_AUTH).json()["score"] == "1.00000"
    if route == "v2":
        body = v2(client, community, B, key).json()
    elif route == "embed":
        body = client.get(f"/internal/embed/score/{community.id}/{B}").json()["score"]
    else:
        auth = {"HTTP_AUTHORIZATION": f"Bearer {rs256_token(B)}"}
        body = client.post(f"/ceramic-cache/score/{B}", "{}", content_type="application/json", **auth).json()
    assert body["score"] == "0.00000" and body["stamps"]["Google"]["dedup"] is True


def test_registry_stamp_follows_a_changed_stamp(client):
    """Mutation: `registry_stamp` never rewritten once written (the unchanged-rows shortcut taken always)."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    row = factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:first"]))
    client.get(f"/internal/embed/score/{community.id}/{A}")
    row.stamp = signed_stamp(A, "Google", nullifiers=["v0:second"])
    row.save()
    client.get(f"/internal/embed/score/{community.id}/{A}")
    assert [stamp.credential for stamp in Stamp.objects.all()] == [row.stamp]


def _typed_row(address: str, provider: str, row_type: int) -> CeramicCache:
    row = factories.cache_stamp(address, signed_stamp(address, provider))
    CeramicCache.objects.filter(id=row.id).update(type=row_type)
    return row


def test_post_replaces_only_v1_rows(client, ceramic):
    """Mutation: POST soft-deleting rows of every type."""
    other_type = _typed_row(A, "Google", 2)
    response = bulk(client, "post", [{"provider": "Google", "stamp": signed_stamp(A, "Google")}])
    assert response.status_code == 201
    other_type.refresh_from_db()
    assert other_type.deleted_at is None


def test_delete_removes_rows_of_every_type(client, ceramic):
    """Mutation: DELETE soft-deleting V1 rows only."""
    other_type = _typed_row(A, "Google", 2)
    assert bulk(client, "delete", [{"provider": "Google"}]).status_code == 200
    other_type.refresh_from_db()
    assert other_type.deleted_at is not None


@pytest.mark.parametrize("stored", ["no-expiry", "error"])
def test_a_stored_score_without_expiry_or_in_error_is_returned_as_stored(client, ceramic, stored):
    """Mutation: the stored-score branch rescoring (or skipping) a score with NULL expiry or ERROR status."""
    passport = Passport.objects.create(address=A, community=ceramic)
    moment = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    fields = {"status": "DONE", "score": 0, "error": None, "evidence": None, "stamps": {}, "stamp_scores": {}}
    if stored == "error":
        fields.update(status="ERROR", score=None, error="Invalid rule")
    Score.objects.create(passport=passport, last_score_timestamp=moment, expiration_date=None, **fields)
    factories.cache_stamp(A, signed_stamp(A, "Google"))  # a rescore would pass
    auth = {"HTTP_AUTHORIZATION": f"Bearer {rs256_token(A)}"}
    body = client.get(f"/ceramic-cache/score/{A}", **auth).json()
    assert body["last_score_timestamp"] == moment.isoformat() and body["passing_score"] is False
    assert body["error"] == ("Invalid rule" if stored == "error" else None)


def test_analytics_rows_mask_credentials_in_headers(client, settings):
    """Mutation: `Authorization` / `Cookie` not masked in the analytics row."""
    settings.FF_API_ANALYTICS = True
    owner = factories.account()
    community = factories.community(owner=owner)
    key = factories.api_key(owner)
    client.get(
        f"/v2/stamps/{community.id}/score/{A}",
        HTTP_AUTHORIZATION=f"Token {key}",
        HTTP_COOKIE="sessionid=cookie-secret-value",
    )
    headers = AccountAPIKeyAnalytics.objects.get().headers
    assert headers["Authorization"] == "***" and headers["Cookie"] == "***"
    assert key not in json.dumps(headers) and "cookie-secret-value" not in json.dumps(headers)


def test_the_scorer_is_found_by_external_id_before_id(client):
    """Mutation: scorer lookup by id first (a partner's external id that is another scorer's id)."""
    owner = factories.account()
    by_id = factories.community(owner=owner, weights={"Google": 1})
    by_external = factories.community(owner=owner, weights={"Google": 5}, external_scorer_id=str(by_id.id))
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    key = factories.api_key(owner)
    assert v2(client, by_id, A, key).json()["score"] == "5.00000"
    assert by_external.id != by_id.id


@pytest.mark.parametrize("offset, earns", [(-60, True), (3600, False)])
def test_human_points_are_written_only_from_their_start_time(client, settings, offset, earns):
    """Mutation: the human-points start timestamp ignored."""
    settings.HUMAN_POINTS_WRITE_ENABLED = True
    settings.HUMAN_POINTS_START_TIMESTAMP = int(datetime.now(UTC).timestamp()) + offset
    community = factories.community(weights={"SelfStakingGold": 30}, human_points_program=True)
    factories.cache_stamp(A, signed_stamp(A, "SelfStakingGold"))
    assert client.get(f"/internal/embed/score/{community.id}/{A}").json()["score"]["passing_score"] is True
    assert HumanPoints.objects.exists() is earns


def test_the_weights_cache_expires(client, settings):
    """Mutations: weights cached forever, or never cached."""
    community = factories.community(weights={"Google": 1.5})
    settings.WEIGHTS_CACHE_SECONDS = 3600
    assert client.get(f"/internal/embed/weights?community_id={community.id}").json() == {"Google": 1.5}
    BinaryWeightedScorer.objects.filter(scorer_ptr_id=community.scorer_id).update(weights={"Google": 9})
    assert client.get(f"/internal/embed/weights?community_id={community.id}").json() == {"Google": 1.5}
    settings.WEIGHTS_CACHE_SECONDS = 0
    assert client.get(f"/internal/embed/weights?community_id={community.id}").json() == {"Google": 9}
