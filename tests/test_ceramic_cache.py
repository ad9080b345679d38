"""/ceramic-cache routes: JWT auth, bulk add/patch/delete, score (stored and rescored), neighbours."""

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.test import Client

from scorer_fast.models import (
    CeramicCache,
    HumanPoints,
    HumanPointsCommunityQualifiedUsers,
    HumanPointsConfig,
    HumanPointsMultiplier,
    Passport,
    Score,
)
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import count_rows, failing_event_inserts, iso, without_timestamp
from tests.test_integrity import run_concurrently
from tests.tokens import RSA_PUBLIC_PEM, hs256_token, legacy_hs256_token, rs256_token, siwe_claims

A, B = "0x" + "a" * 40, "0x" + "b" * 40
WEIGHTS = {"Google": 1.5, "Ens": 2.25, "Github": 3}


@pytest.fixture
def ceramic(settings):
    settings.SIWE_JWT_PUBLIC_KEY = RSA_PUBLIC_PEM
    community = factories.community(weights=WEIGHTS, threshold="3")
    settings.CERAMIC_CACHE_SCORER_ID = community.id
    return community


def auth(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def send(client, method, path, body, token):
    return getattr(client, method)(path, json.dumps(body), content_type="application/json", **auth(token))


def items(*providers, address=A):
    return [{"provider": p, "stamp": signed_stamp(address, p)} for p in providers]


def live(address=A):
    return list(CeramicCache.objects.filter(address=address, deleted_at__isnull=True).order_by("id"))


# --- auth ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("make", [rs256_token, legacy_hs256_token], ids=["rs256", "legacy-hs256"])
def test_both_token_kinds_are_accepted(client, ceramic, make):
    assert client.get(f"/ceramic-cache/score/{A}", **auth(make(A))).status_code == 200


@pytest.mark.django_db
def test_a_base64_encoded_public_key_works_too(client, ceramic, settings):
    settings.SIWE_JWT_PUBLIC_KEY = base64.b64encode(RSA_PUBLIC_PEM.encode()).decode()
    assert client.get(f"/ceramic-cache/score/{A}", **auth(rs256_token(A))).status_code == 200


def _refused_tokens(settings) -> dict[str, str]:
    from tests.tokens import RSA_PRIVATE_PEM

    now = int(time.time())
    other_key = jwt.encode(siwe_claims(A), _other_rsa_pem(), algorithm="RS256")
    unsigned = jwt.encode(siwe_claims(A), None, algorithm="none")
    hs_claims = {"did": f"did:pkh:eip155:1:{A}", "exp": now + 600, "jti": "x", "token_type": "access"}
    return {
        "expired rs256": rs256_token(A, exp=now - 1),
        "rs256 without exp": rs256_token(A, exp=None),
        "wrong signature": other_key,
        "wrong issuer": rs256_token(A, iss="someone-else"),
        "alg none": unsigned,
        "hs256 signed with the public key": hs256_token(RSA_PUBLIC_PEM, siwe_claims(A)),
        "expired hs256": hs256_token(settings.SECRET_KEY, {**hs_claims, "exp": now - 1}),
        "hs256 without jti": hs256_token(settings.SECRET_KEY, {k: v for k, v in hs_claims.items() if k != "jti"}),
        "refresh token": hs256_token(settings.SECRET_KEY, {**hs_claims, "token_type": "refresh"}),
        "garbage": "not-a-token",
        "rs256 signed as hs256 with private key": hs256_token(RSA_PRIVATE_PEM, siwe_claims(A)),
    }


def _other_rsa_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.django_db
def test_bad_tokens_are_refused_with_401(client, ceramic, settings):
    for name, token in _refused_tokens(settings).items():
        response = client.get(f"/ceramic-cache/score/{A}", **auth(token))
        assert response.status_code == 401, name
        assert response.json() == {"error": "Given token not valid for any token type"}, name
    assert client.get(f"/ceramic-cache/score/{A}").json() == {"error": "Unauthorized"}
    assert client.get(f"/ceramic-cache/score/{A}", HTTP_AUTHORIZATION=rs256_token(A)).status_code == 401
    assert count_rows("registry_passport") == 0


@pytest.mark.django_db
def test_the_path_address_must_be_the_tokens(client, ceramic):
    response = client.get(f"/ceramic-cache/score/{B}", **auth(rs256_token(A)))
    assert (response.status_code, response.json()) == (
        401,
        {"error": "The address does not match the token's address."},
    )
    assert client.get(f"/ceramic-cache/score/{A.upper()[2:]}", **auth(rs256_token(A))).status_code == 401  # no 0x
    assert client.get(f"/ceramic-cache/score/0x{A.upper()[2:]}", **auth(rs256_token(A))).status_code == 200


# --- bulk POST -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bulk_post_saves_rows_and_returns_201_with_stamps_and_score(client, ceramic):
    posted = items("Google", "Ens")
    response = send(client, "post", "/ceramic-cache/stamps/bulk", posted, rs256_token(A))
    assert response.status_code == 201
    body = response.json()
    rows = live()
    assert body["success"] is True
    assert body["stamps"] == [
        {"id": row.id, "address": A, "provider": item["provider"], "stamp": item["stamp"]}
        for row, item in zip(rows, posted, strict=True)
    ]
    google, ens = (item["stamp"] for item in posted)
    assert without_timestamp(body["score"]) == {
        "address": A,
        "score": "3.75000",
        "passing_score": True,
        "expiration_timestamp": iso(min(google["expirationDate"], ens["expirationDate"])),
        "threshold": "3.00000",
        "error": None,
        "stamps": {
            "Google": {"score": "1.50000", "dedup": False, "expiration_date": iso(google["expirationDate"])},
            "Ens": {"score": "2.25000", "dedup": False, "expiration_date": iso(ens["expirationDate"])},
        },
        "points_data": None,
        "possible_points_data": None,
        "linked_score": None,
    }
    assert {(row.source_app, row.source_scorer_id, row.compose_db_save_status) for row in rows} == {
        (1, ceramic.id, "pending")
    }
    assert Passport.objects.get().community_id == ceramic.id


@pytest.mark.django_db
def test_bulk_post_of_an_empty_list_rescores(client, ceramic):
    factories.cache_stamp(A, signed_stamp(A, "Github"))
    body = send(client, "post", "/ceramic-cache/stamps/bulk", [], legacy_hs256_token(A)).json()
    assert [stamp["provider"] for stamp in body["stamps"]] == ["Github"] and body["score"]["score"] == "3.00000"


@pytest.mark.django_db
def test_bulk_post_replaces_only_the_submitted_providers(client, ceramic):
    send(client, "post", "/ceramic-cache/stamps/bulk", items("Google", "Ens"), rs256_token(A))
    send(client, "post", "/ceramic-cache/stamps/bulk", items("Google"), rs256_token(A))
    assert [row.provider for row in live()] == ["Ens", "Google"]
    assert CeramicCache.objects.filter(provider="Google", deleted_at__isnull=False).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, status, message",
    [
        (items("Google") * 101, 422, "You have submitted too many stamps."),
        ([{"provider": "Google"}], 400, "Stamp 0: the credential must be a JSON object."),
        ([{"stamp": {"proof": {"proofValue": "0x1"}}}], 400, "Stamp 0: missing provider (credentialSubject.provider)."),
        ([{"provider": "Google", "stamp": {"proof": {}}}], 400, "Stamp 0 (Google): missing proof.proofValue."),
        ({"provider": "Google"}, 400, "body.payload: Input should be a valid list"),
    ],
)
def test_bad_bulk_posts_write_nothing(client, ceramic, body, status, message):
    response = send(client, "post", "/ceramic-cache/stamps/bulk", body, rs256_token(A))
    assert (response.status_code, response.json()) == (status, {"error": message})
    assert count_rows("ceramic_cache_ceramiccache") == 0 and count_rows("registry_passport") == 0


@pytest.mark.django_db
def test_a_duplicate_provider_in_one_post_writes_nothing(client, ceramic):
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    response = send(client, "post", "/ceramic-cache/stamps/bulk", items("Google", "Ens", "Google"), rs256_token(A))
    assert (response.status_code, response.json()) == (
        400,
        {"error": "Stamp 2: provider Google is also submitted as stamp 0."},
    )
    assert [(row.provider, row.deleted_at) for row in CeramicCache.objects.all()] == [("Google", None)]


def test_sixteen_concurrent_bulk_posts_leave_one_live_row_per_provider(committed_db, settings):
    settings.SIWE_JWT_PUBLIC_KEY = RSA_PUBLIC_PEM
    settings.CERAMIC_CACHE_SCORER_ID = factories.community(weights=WEIGHTS).id
    token = rs256_token(A)
    bodies = [items("Google", "Ens", "Github") for _ in range(16)]
    responses = run_concurrently(16, lambda i: send(Client(), "post", "/ceramic-cache/stamps/bulk", bodies[i], token))
    assert sorted(response.status_code for response in responses) == [201] * 16
    assert sorted(row.provider for row in live()) == ["Ens", "Github", "Google"]
    assert Score.objects.count() == 1


def test_a_failure_mid_request_leaves_nothing_half_written(committed_db, settings):

    settings.SIWE_JWT_PUBLIC_KEY = RSA_PUBLIC_PEM
    settings.CERAMIC_CACHE_SCORER_ID = factories.community(weights=WEIGHTS).id
    before = factories.cache_stamp(A, signed_stamp(A, "Google"))
    with failing_event_inserts():
        response = send(
            Client(raise_request_exception=False), "post", "/ceramic-cache/stamps/bulk", items("Google"), rs256_token(A)
        )
    assert response.status_code == 500 and response.json() == {"error": "An error has occurred"}
    assert [(row.id, row.deleted_at) for row in CeramicCache.objects.all()] == [(before.id, None)]
    assert count_rows("registry_score") == 0


# --- PATCH and DELETE ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_patch_replaces_stamped_items_and_removes_the_rest(client, ceramic):
    send(client, "post", "/ceramic-cache/stamps/bulk", items("Google", "Ens", "Github"), rs256_token(A))
    newer = signed_stamp(A, "Google", days_valid=80)
    body = send(
        client,
        "patch",
        "/ceramic-cache/stamps/bulk",
        [{"provider": "Google", "stamp": newer}, {"provider": "Ens"}],
        rs256_token(A),
    ).json()
    assert [row.provider for row in live()] == ["Github", "Google"]
    google = live()[1]
    assert google.stamp == newer and (google.source_app, google.source_scorer_id) == (None, None)
    assert [stamp["provider"] for stamp in body["stamps"]] == ["Github", "Google"]
    assert body["score"]["score"] == "4.50000"


@pytest.mark.django_db
def test_delete_soft_deletes_and_rescores(client, ceramic):
    send(client, "post", "/ceramic-cache/stamps/bulk", items("Google", "Ens"), rs256_token(A))
    response = send(
        client, "delete", "/ceramic-cache/stamps/bulk", [{"provider": "Google"}, {"provider": "Nope"}], rs256_token(A)
    )
    assert response.status_code == 200
    body = response.json()
    assert [stamp["provider"] for stamp in body["stamps"]] == ["Ens"]
    assert body["score"]["score"] == "2.25000" and list(body["score"]["stamps"]) == ["Ens"]
    deleted = CeramicCache.objects.get(provider="Google")
    assert deleted.deleted_at is not None and deleted.updated_at == deleted.deleted_at
    missing = send(client, "delete", "/ceramic-cache/stamps/bulk", [{"provider": "Google"}], rs256_token(A))
    assert (missing.status_code, missing.json()) == (404, {"error": "Unable to find stamp to delete."})


# --- score -----------------------------------------------------------------------------------------------------


def _stored_score(community, *, expires_in_days: float | None, raw="10", threshold="5") -> Score:
    passport = Passport.objects.create(address=A, community=community)
    return Score.objects.create(
        passport=passport,
        score=1,
        status="DONE",
        last_score_timestamp=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        evidence={"type": "ThresholdScoreCheck", "success": True, "rawScore": raw, "threshold": threshold},
        stamp_scores={"Google": 10.0},
        stamps={
            "Google": {"score": "10.00000", "dedup": False, "expiration_date": "2027-01-01T00:00:00+00:00", "x": 1}
        },
        expiration_date=None if expires_in_days is None else datetime.now(UTC) + timedelta(days=expires_in_days),
    )


@pytest.mark.django_db
def test_a_stored_unexpired_score_is_returned_without_rescoring(client, ceramic):
    stored = _stored_score(ceramic, expires_in_days=3)
    body = client.get(f"/ceramic-cache/score/{A}", **auth(rs256_token(A))).json()
    assert body == {
        "address": A,
        "score": "10.00000",
        "passing_score": True,
        "last_score_timestamp": "2026-01-02T03:04:05.123456+00:00",
        "expiration_timestamp": stored.expiration_date.isoformat(),
        "threshold": "5.00000",
        "error": None,
        "stamps": {"Google": {"score": "10.00000", "dedup": False, "expiration_date": "2027-01-01T00:00:00+00:00"}},
        "points_data": None,
        "possible_points_data": None,
        "linked_score": None,
    }
    assert count_rows("registry_event") == 0


@pytest.mark.django_db
def test_an_expired_stored_score_is_rescored(client, ceramic):
    _stored_score(ceramic, expires_in_days=-1)
    factories.cache_stamp(A, signed_stamp(A, "Ens"))
    body = client.get(f"/ceramic-cache/score/{A}", **auth(rs256_token(A))).json()
    assert body["score"] == "2.25000" and body["threshold"] == "3.00000"
    assert count_rows("registry_event", "action = 'SCU'") == 1


@pytest.mark.django_db
def test_points_data_comes_with_a_stored_score_in_the_programme(client, ceramic, settings):
    settings.HUMAN_POINTS_ENABLED = True
    ceramic.human_points_program = True
    ceramic.save()
    _stored_score(ceramic, expires_in_days=3)
    for action, points, active in (("SCB", 500, True), ("HKY", 100, True), ("ISG", 400, True), ("PMT", 7, False)):
        HumanPointsConfig.objects.create(action=action, points=points, active=active)
    now = datetime.now(UTC)
    for action, provider, chain_id in (("HKY", "Google", 0), ("HKY", "Ens", 0), ("ISG", "", 0), ("SCB", "", 10)):
        HumanPoints.objects.create(
            address=A, action=action, provider=provider, chain_id=chain_id, tx_hash="", timestamp=now
        )
    HumanPointsMultiplier.objects.create(address=A, multiplier=2)
    HumanPointsCommunityQualifiedUsers.objects.create(address=A, community=ceramic)

    body = client.get(f"/ceramic-cache/score/{A}", **auth(rs256_token(A))).json()

    assert body["points_data"] == {
        "total_points": 1100,
        "is_eligible": True,
        "multiplier": 2,
        "breakdown": {"HKY": 200, "ISG": 400, "SCB": 500, "SCB_10": 500},
    }
    assert body["possible_points_data"] == {
        "total_points": 0,
        "is_eligible": False,
        "multiplier": 2,
        "breakdown": {"HKY": 100, "ISG": 400, "SCB": 500},
    }
    ceramic.human_points_program = False
    ceramic.save()
    plain = client.get(f"/ceramic-cache/score/{A}", **auth(rs256_token(A))).json()
    assert plain["points_data"] is None and plain["possible_points_data"] is None


@pytest.mark.django_db
def test_alternate_scorer_and_post_score_rescore(client, ceramic):
    other = factories.community(weights={"Ens": 7})
    factories.cache_stamp(A, signed_stamp(A, "Ens"))
    got = client.get(f"/ceramic-cache/score/{A}?alternate_scorer_id={other.id}", **auth(rs256_token(A))).json()
    assert got["score"] == "7.00000"
    posted = send(client, "post", f"/ceramic-cache/score/{A}", {"alternate_scorer_id": other.id}, rs256_token(A))
    assert posted.status_code == 200 and posted.json()["score"] == "7.00000"
    assert count_rows("registry_event", "action = 'SCU'") == 2
    missing = client.get(f"/ceramic-cache/score/{A}?alternate_scorer_id=999999", **auth(rs256_token(A)))
    assert missing.status_code == 404


# --- neighbours ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stamp_list_needs_no_token_and_writes_nothing(client, ceramic):
    row = factories.cache_stamp(A, signed_stamp(A, "Google"))
    response = client.get(f"/ceramic-cache/stamp?address={A.upper()}")
    assert response.json() == {
        "success": True,
        "stamps": [{"id": row.id, "address": A, "provider": "Google", "stamp": row.stamp}],
    }
    assert client.get(f"/ceramic-cache/stamp?address={B}").json() == {"success": True, "stamps": []}
    missing = client.get("/ceramic-cache/stamp")
    assert (missing.status_code, missing.json()) == (400, {"error": "query.address: Field required"})
    assert count_rows("registry_score") == 0


@pytest.mark.django_db
def test_weights_routes_return_the_scorer_weights(client, ceramic):
    assert client.get("/ceramic-cache/weights").json() == WEIGHTS
    assert client.get("/internal/embed/weights").json() == {"Google": 1.5, "Ens": 2.25, "Github": 3.0}
    other = factories.community(weights={"X": 2})
    assert client.get(f"/internal/embed/weights?community_id={other.id}").json() == {"X": 2.0}


@pytest.mark.django_db
def test_the_rollout_header_gates_the_ceramic_cache_routes(client, ceramic, settings):
    settings.ROLLOUT_ROUTING_HEADER = "X-Use-Rust-Scorer"
    assert client.get("/ceramic-cache/weights").status_code == 404
    assert client.get("/ceramic-cache/weights", HTTP_X_USE_RUST_SCORER="true").status_code == 200
    assert client.get(f"/internal/embed/score/{ceramic.id}/{A}").status_code == 200  # other routes unaffected


@pytest.mark.django_db
def test_cors_headers_and_preflight(client, ceramic):
    preflight = client.options("/ceramic-cache/stamps/bulk")
    assert preflight.status_code == 200 and preflight["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]


@pytest.mark.django_db
def test_weights_routes_name_the_misconfigured_scorer(client, settings):
    settings.CERAMIC_CACHE_SCORER_ID = 424242
    message = "Unable to retrieve configured scorer! settings.CERAMIC_CACHE_SCORER_ID=424242"
    response = client.get("/ceramic-cache/weights")
    assert (response.status_code, response.json()) == (500, {"error": message})
    response = client.get("/internal/embed/weights?community_id=999")
    assert (response.status_code, response.json()) == (500, {"detail": message})
