"""GET /v2/stamps/{scorer_id}/score/{address}: exact bodies, rows written, credential checks, scorer lookup."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from scorer_fast.models import Event, HashScorerLink, Passport, Score, Stamp
from tests import factories
from tests.credentials import ED25519_ISSUER_JWK, UNTRUSTED_ISSUER_JWK, signed_stamp
from tests.helpers import INTERNAL_AUTH, count_rows, iso, without_timestamp

pytestmark = pytest.mark.django_db

ADDRESS = "0xc79abb54e4824cdb65c71f2eeb2d7f2db5da1fb8"
WEIGHTS = {"Ens": 0.208, "Google": 0.525}


@pytest.fixture
def partner():
    owner = factories.account()
    community = factories.community(owner=owner, weights=WEIGHTS, threshold="20", scorer_type="WEIGHTED")
    return owner, community, factories.api_key(owner)


def get_score(client, community_id, address, key, **headers):
    headers = headers or {"HTTP_X_API_KEY": key}
    return client.get(f"/v2/stamps/{community_id}/score/{address}", **headers)


def test_it_scores_signed_stamps_with_the_original_formats(client, partner):
    owner, community, key = partner
    ens, google, unknown = (signed_stamp(ADDRESS, p) for p in ("Ens", "Google", "Unknown"))
    for credential in (ens, google, unknown):
        factories.cache_stamp(ADDRESS, credential)

    response = get_score(client, community.id, ADDRESS.upper().replace("0X", "0x"), key)

    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "address",
        "score",
        "passing_score",
        "last_score_timestamp",
        "expiration_timestamp",
        "threshold",
        "error",
        "stamps",
        "points_data",
        "possible_points_data",
        "linked_score",
    ]
    assert without_timestamp(body) == {
        "address": ADDRESS,
        "score": "0.73300",
        "passing_score": False,
        "expiration_timestamp": iso(ens["expirationDate"]),
        "threshold": "20.00000",
        "error": None,
        "stamps": {
            "Ens": {"score": "0.20800", "dedup": False, "expiration_date": iso(ens["expirationDate"])},
            "Google": {"score": "0.52500", "dedup": False, "expiration_date": iso(google["expirationDate"])},
            "Unknown": {"score": "0.00000", "dedup": False, "expiration_date": iso(unknown["expirationDate"])},
        },
        "points_data": None,
        "possible_points_data": None,
        "linked_score": None,
    }
    passport = Passport.objects.get()
    assert (passport.address, passport.community_id) == (ADDRESS, community.id)
    score = Score.objects.get(passport=passport)
    assert score.score == Decimal("0") and score.status == "DONE" and score.error is None
    assert score.evidence == {
        "type": "ThresholdScoreCheck",
        "success": False,
        "rawScore": "0.7330000000000000126565424807",
        "threshold": "20.00000",
    }
    assert score.stamp_scores == {"Ens": 0.208, "Google": 0.525, "Unknown": 0.0}
    assert score.stamps == body["stamps"]
    assert score.last_score_timestamp.isoformat() == body["last_score_timestamp"]
    assert sorted(Stamp.objects.values_list("provider", flat=True)) == ["Ens", "Google", "Unknown"]
    assert Stamp.objects.get(provider="Google").credential == google
    assert HashScorerLink.objects.filter(address=ADDRESS, community=community).count() == 3
    event = Event.objects.get(action="SCU")
    assert (event.address, event.community_id) == (ADDRESS, community.id)
    assert event.data == {
        "model": "registry.score",
        "pk": score.id,
        "fields": {
            "passport": passport.id,
            "score": "0",
            "last_score_timestamp": score.last_score_timestamp.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "status": "DONE",
            "error": None,
            "evidence": score.evidence,
            "stamp_scores": score.stamp_scores,
            "stamps": score.stamps,
            "expiration_date": ens["expirationDate"],
        },
    }


def test_it_returns_the_same_body_when_scored_twice(client, partner):
    _owner, community, key = partner
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Google"))
    first = get_score(client, community.id, ADDRESS, key).json()
    second = get_score(client, community.id, ADDRESS, key).json()
    assert without_timestamp(first) == without_timestamp(second)
    assert Stamp.objects.count() == 1 and Passport.objects.count() == 1 and Score.objects.count() == 1
    assert Event.objects.filter(action="SCU").count() == 2


def test_it_passes_a_binary_threshold_with_integer_weights(client):
    owner = factories.account()
    community = factories.community(owner=owner, weights={"A": 15, "B": 15, "C": 15}, threshold="20")
    key = factories.api_key(owner)
    for provider in "ABC":
        factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, provider))
    body = get_score(client, community.id, ADDRESS, key).json()
    assert (body["score"], body["passing_score"], body["threshold"]) == ("45.00000", True, "20.00000")
    score = Score.objects.get()
    assert score.score == Decimal("1") and score.evidence["rawScore"] == "45" and score.evidence["success"] is True
    assert score.stamp_scores == {"A": 15.0, "B": 15.0, "C": 15.0}


def test_it_scores_no_stamps_as_zero(client, partner):
    _owner, community, key = partner
    body = get_score(client, community.id, ADDRESS, key).json()
    assert without_timestamp(body) == {
        "address": ADDRESS,
        "score": "0.00000",
        "passing_score": False,
        "expiration_timestamp": None,
        "threshold": "20.00000",
        "error": None,
        "stamps": {},
        "points_data": None,
        "possible_points_data": None,
        "linked_score": None,
    }
    assert Score.objects.get().evidence["rawScore"] == "0"


def test_it_drops_expired_tampered_untrusted_and_foreign_credentials(client, partner):
    _owner, community, key = partner
    tampered = signed_stamp(ADDRESS, "Google")
    tampered["credentialSubject"]["provider"] = "Ens"  # signed as Google
    stamps = {
        "Expired": signed_stamp(ADDRESS, "Expired", days_valid=-1),
        "Ens": tampered,
        "Untrusted": signed_stamp(ADDRESS, "Untrusted", issuer_jwk=UNTRUSTED_ISSUER_JWK),
        "Foreign": signed_stamp(ADDRESS, "Foreign", subject_id="did:pkh:eip155:1:0x" + "b" * 40),
        "Valid": signed_stamp(ADDRESS, "Valid"),
    }
    for provider, credential in stamps.items():
        factories.cache_stamp(ADDRESS, credential, provider=provider)
    body = get_score(client, community.id, ADDRESS, key).json()
    assert list(body["stamps"]) == ["Valid"]
    assert list(Stamp.objects.values_list("provider", flat=True)) == ["Valid"]


def test_it_accepts_legacy_ed25519_did_key_credentials(client, partner):
    _owner, community, key = partner
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Google", issuer_jwk=ED25519_ISSUER_JWK))
    body = get_score(client, community.id, ADDRESS, key).json()
    assert body["score"] == "0.52500"


def test_it_ignores_revoked_and_deleted_cache_rows(client, partner):
    from scorer_fast.models import Revocation

    _owner, community, key = partner
    revoked = factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Google"))
    Revocation.objects.create(proof_value=revoked.proof_value, ceramic_cache=revoked)
    deleted = factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Ens"))
    deleted.deleted_at = datetime.now(UTC)
    deleted.save()
    assert get_score(client, community.id, ADDRESS, key).json()["stamps"] == {}


@pytest.mark.parametrize("bad", ["0x123", "0x" + "g" * 40, "x" * 42])
def test_it_refuses_an_invalid_address_and_writes_nothing(client, partner, bad):
    _owner, community, key = partner
    response = get_score(client, community.id, bad, key)
    assert (response.status_code, response.json()) == (400, {"error": "Invalid address."})
    assert count_rows("registry_passport") == 0 and count_rows("registry_score") == 0


def test_it_accepts_an_address_without_0x_like_the_original(client, partner):
    _owner, community, key = partner
    response = get_score(client, community.id, "A" * 40, key)
    assert response.status_code == 200 and response.json()["address"] == "a" * 40


def test_it_finds_the_scorer_by_external_id_then_id_within_the_keys_account(client):
    owner = factories.account()
    community = factories.community(owner=owner, external_scorer_id="partner-scorer")
    key = factories.api_key(owner)
    assert get_score(client, "partner-scorer", ADDRESS, key).status_code == 200
    assert get_score(client, community.id, ADDRESS, key).status_code == 200
    other = factories.community()
    response = get_score(client, other.id, ADDRESS, key)
    assert (response.status_code, response.json()) == (404, {"error": "No scorer matches the given criteria."})


def test_it_maps_negative_scorer_ids_to_the_demo_scorer(client, settings):
    owner = factories.account()
    demo = factories.community(owner=owner)
    key = factories.api_key(owner)
    settings.DEMO_API_SCORER_ID = demo.id
    assert get_score(client, -1, ADDRESS, key).status_code == 200
    assert Passport.objects.get().community_id == demo.id
    settings.DEMO_API_SCORER_ID = None
    assert get_score(client, -1, ADDRESS, key).status_code == 404


def test_it_saves_an_error_state_score_for_an_unknown_rule(client):
    owner = factories.account()
    community = factories.community(owner=owner, rule="FIFO")
    key = factories.api_key(owner)
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Google"))
    response = get_score(client, community.id, ADDRESS, key)
    assert response.status_code == 200
    assert response.json() == {
        "address": ADDRESS,
        "score": "0.00000",
        "passing_score": False,
        "last_score_timestamp": None,
        "expiration_timestamp": None,
        "threshold": "20.00000",
        "error": "Invalid rule",
        "stamps": {},
        "points_data": None,
        "possible_points_data": None,
        "linked_score": None,
    }
    score = Score.objects.get()
    assert (score.status, score.score, score.evidence, score.stamps, score.error) == (
        "ERROR",
        None,
        None,
        None,
        "Invalid rule",
    )
    assert Stamp.objects.count() == 0 and Event.objects.count() == 0


def test_it_applies_customization_weight_overrides(client):
    owner = factories.account()
    community = factories.community(owner=owner, weights={"Google": 0.525, "AllowList#vips": 1})
    key = factories.api_key(owner)
    factories.allow_list_customization(community, list_name="vips", weight="10.0000")
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "AllowList#vips"))
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Google"))
    get_score(client, community.id, ADDRESS, key)
    score = Score.objects.get()
    assert score.evidence["rawScore"] == "10.52500000000000002220446049"
    assert score.stamp_scores == {"AllowList#vips": 10.0, "Google": 0.525}


@pytest.mark.parametrize("token", [None, "wrong-token", "Bearer scorer-fast-test-internal-token"])
def test_internal_score_route_requires_the_internal_token(client, token):
    community = factories.community(weights={"Google": 42})
    headers = {"HTTP_AUTHORIZATION": token} if token else {}
    response = client.get(f"/internal/score/v2/{community.id}/{ADDRESS}", **headers)
    assert (response.status_code, response.json()) == (401, {"detail": "Unauthorized"})
    assert Score.objects.count() == 0


def test_internal_score_route_refuses_everyone_when_no_token_is_configured(client, settings):
    settings.CGRANTS_API_TOKEN = ""
    community = factories.community(weights={"Google": 42})
    response = client.get(f"/internal/score/v2/{community.id}/{ADDRESS}", HTTP_AUTHORIZATION="")
    assert (response.status_code, response.json()) == (401, {"detail": "Unauthorized"})


def test_internal_score_route_answers_with_the_internal_token(client):
    community = factories.community(weights={"Google": 42})
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Google"))
    response = client.get(f"/internal/score/v2/{community.id}/{ADDRESS}", **INTERNAL_AUTH)
    assert response.status_code == 200 and response.json()["score"] == "42.00000"
    missing = client.get(f"/internal/score/v2/999999/{ADDRESS}", **INTERNAL_AUTH)
    assert (missing.status_code, missing.json()) == (404, {"detail": "No Community matches the given query."})


def test_internal_score_route_answers_500_for_an_error_state_score(client):
    community = factories.community(rule="FIFO")
    response = client.get(f"/internal/score/v2/{community.id}/{ADDRESS}", **INTERNAL_AUTH)
    assert (response.status_code, response.json()) == (500, {"detail": "Failed to calculate score."})
    assert Score.objects.get().status == "ERROR"  # the error state is saved all the same


def test_it_records_api_usage_when_analytics_are_on(client, partner, settings):
    from scorer_fast.models import AccountAPIKeyAnalytics

    settings.FF_API_ANALYTICS = True
    _owner, community, key = partner
    scored = client.get(f"/v2/stamps/{community.id}/score/{ADDRESS}?a=b", HTTP_X_API_KEY=key)
    client.get(f"/v2/stamps/999999/score/{ADDRESS}", HTTP_X_API_KEY=key)
    ok, missing = AccountAPIKeyAnalytics.objects.order_by("id")
    assert ok.path_segments == ["v2", "stamps", str(community.id), "score", ADDRESS]
    assert ok.query_params == {"a": ["b"]} and ok.status_code == 200 and ok.error is None
    assert ok.headers["X-Api-Key"] == "***" and key not in json.dumps(ok.headers)
    assert json.loads(ok.response)["address"] == ADDRESS and ok.response_skipped is False
    assert ok.response == scored.content.decode()  # the row keeps the very text the partner received
    assert scored["Content-Type"] == "application/json; charset=utf-8"
    assert (missing.status_code, missing.error) == (404, "No scorer matches the given criteria.")
    assert AccountAPIKeyAnalytics.objects.count() == 2
    client.get(f"/v2/stamps/{community.id}/score/{ADDRESS}", HTTP_X_API_KEY="bad.key")
    assert AccountAPIKeyAnalytics.objects.count() == 2  # no row for a failed authentication


def test_score_expiration_is_the_earliest_stamp_expiry(client, partner):
    _owner, community, key = partner
    soon = signed_stamp(ADDRESS, "Ens", days_valid=2)
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Google", days_valid=20))
    factories.cache_stamp(ADDRESS, soon)
    body = get_score(client, community.id, ADDRESS, key).json()
    assert body["expiration_timestamp"] == iso(soon["expirationDate"])
    assert Score.objects.get().expiration_date == datetime.fromisoformat(soon["expirationDate"])
    assert Score.objects.get().expiration_date < datetime.now(UTC) + timedelta(days=3)
