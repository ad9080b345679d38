"""/internal/embed routes: add stamps and rescore, get score; errors write nothing."""

import json
import os
from datetime import datetime

import pytest
from django.db import connection, connections
from django.test import Client

from scorer_fast.models import CeramicCache, Revocation, Score
from tests import factories, pooler
from tests.credentials import signed_stamp
from tests.helpers import count_rows, failing_event_inserts, iso, without_timestamp
from tests.test_integrity import run_concurrently

A = "0x" + "a" * 40
WEIGHTS = {"Google": 15, "Ens": 15, "Github": 15}


@pytest.fixture
def community():
    return factories.community(weights=WEIGHTS, threshold="20")


def post(client, address, body, **extra):
    payload = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/internal/embed/stamps/{address}", payload, content_type="application/json", **extra)


def live_rows(address=A):
    return list(CeramicCache.objects.filter(address=address, deleted_at__isnull=True).order_by("id"))


@pytest.mark.django_db
def test_it_saves_the_stamps_rescores_and_returns_both(client, community):
    stamps = [signed_stamp(A, provider) for provider in WEIGHTS]
    response = post(client, A.upper().replace("0X", "0x"), {"scorer_id": community.id, "stamps": stamps})
    assert response.status_code == 200
    body = response.json()
    rows = live_rows()
    assert body["success"] is True
    assert body["stamps"] == [
        {"id": row.id, "address": A, "provider": provider, "stamp": stamp}
        for row, provider, stamp in zip(rows, WEIGHTS, stamps, strict=True)
    ]
    earliest = min(stamp["expirationDate"] for stamp in stamps)
    assert without_timestamp(body["score"]) == {
        "address": A,
        "score": "45.00000",
        "passing_score": True,
        "expiration_timestamp": iso(earliest),
        "threshold": "20.00000",
        "error": None,
        "stamps": {
            p: {"score": "15.00000", "dedup": False, "expiration_date": iso(s["expirationDate"])}
            for p, s in zip(WEIGHTS, stamps, strict=True)
        },
        "points_data": None,
        "possible_points_data": None,
        "linked_score": None,
    }
    for row, stamp in zip(rows, stamps, strict=True):
        assert (row.type, row.source_app, row.source_scorer_id, row.compose_db_save_status) == (
            1,
            2,
            community.id,
            "pending",
        )
        assert row.proof_value == stamp["proof"]["proofValue"] and row.compose_db_stream_id == ""
        assert row.issuance_date == datetime.fromisoformat(stamp["issuanceDate"])
        assert row.expiration_date == datetime.fromisoformat(stamp["expirationDate"])
        assert row.created_at == row.updated_at and row.deleted_at is None
    score = Score.objects.get()
    assert (score.score, score.status, score.evidence["rawScore"]) == (1, "DONE", "45")


@pytest.mark.django_db
def test_resubmitting_a_provider_replaces_the_old_row(client, community):
    post(client, A, {"scorer_id": community.id, "stamps": [signed_stamp(A, "Google"), signed_stamp(A, "Ens")]})
    newer = signed_stamp(A, "Google", days_valid=60)
    body = post(client, A, {"scorer_id": community.id, "stamps": [newer]}).json()
    assert [row.provider for row in live_rows()] == ["Ens", "Google"]
    assert CeramicCache.objects.filter(provider="Google", deleted_at__isnull=False).count() == 1
    assert live_rows()[1].stamp == newer
    assert body["score"]["score"] == "30.00000"


@pytest.mark.django_db
def test_revoked_rows_are_neither_returned_nor_scored(client, community):
    revoked = factories.cache_stamp(A, signed_stamp(A, "Github"))
    Revocation.objects.create(proof_value=revoked.proof_value, ceramic_cache=revoked)
    body = post(client, A, {"scorer_id": community.id, "stamps": [signed_stamp(A, "Google")]}).json()
    assert [stamp["provider"] for stamp in body["stamps"]] == ["Google"]
    assert list(body["score"]["stamps"]) == ["Google"]


def _signed(count: int) -> list[dict]:
    return [signed_stamp(A, f"P{i}") for i in range(count)]


BAD_REQUESTS = [
    ("unknown scorer", A, lambda c: {"scorer_id": 999999, "stamps": _signed(1)}, 400, {"detail": "Invalid scorer_id"}),
    (
        "invalid address",
        "0x12",
        lambda c: {"scorer_id": c.id, "stamps": _signed(1)},
        400,
        {"detail": "Invalid address."},
    ),
    (
        "too many stamps",
        A,
        lambda c: {"scorer_id": c.id, "stamps": [_signed(1)[0]] * 101},
        422,
        {"detail": "You have submitted too many stamps."},
    ),
    (
        "no provider",
        A,
        lambda c: {"scorer_id": c.id, "stamps": _signed(1) + [{**_signed(1)[0], "credentialSubject": {"id": "x"}}]},
        400,
        {"detail": "Stamp 1: missing provider (credentialSubject.provider)."},
    ),
    (
        "no proofValue",
        A,
        lambda c: {"scorer_id": c.id, "stamps": [{**_signed(1)[0], "proof": {"jws": "x"}}]},
        400,
        {"detail": "Stamp 0 (P0): missing proof.proofValue."},
    ),
    (
        "same provider twice",
        A,
        lambda c: {"scorer_id": c.id, "stamps": _signed(2) + _signed(1)},
        400,
        {"detail": "Stamp 2: provider P0 is also submitted as stamp 0."},
    ),
    (
        "bad date",
        A,
        lambda c: {"scorer_id": c.id, "stamps": [{**_signed(1)[0], "expirationDate": "soon"}]},
        400,
        {"detail": "Stamp 0: expirationDate is not an ISO 8601 date."},
    ),
    ("missing scorer_id", A, lambda c: {"stamps": []}, 400, {"detail": "body.payload.scorer_id: Field required"}),
    (
        "scorer_id not a number",
        A,
        lambda c: {"scorer_id": "abc", "stamps": []},
        400,
        {"detail": "body.payload.scorer_id: Input should be a valid integer, unable to parse string as an integer"},
    ),
    ("malformed JSON", A, lambda c: '{"scorer_id": 1, "stamps": [', 400, {"detail": "Cannot parse request body"}),
]


@pytest.mark.django_db
@pytest.mark.parametrize("name, address, body, status, expected", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
def test_bad_input_gets_a_clear_4xx_and_writes_nothing(client, community, name, address, body, status, expected):
    existing = factories.cache_stamp(A, signed_stamp(A, "P0"))
    response = post(client, address, body(community))
    assert (response.status_code, response.json()) == (status, expected)
    assert [row.id for row in live_rows()] == [existing.id]
    assert count_rows("ceramic_cache_ceramiccache") == 1 and count_rows("registry_score") == 0


@pytest.mark.django_db
def test_a_body_over_2_mb_gets_413(client, community):
    response = post(client, A, {"scorer_id": community.id, "stamps": [{"pad": "x" * (2 * 1024 * 1024)}]})
    assert response.status_code == 413 and "exceeds" in response.json()["detail"]
    assert count_rows("ceramic_cache_ceramiccache") == 0


@pytest.mark.django_db
def test_get_score_rescores_and_returns_the_stamps(client, community):
    row = factories.cache_stamp(A, signed_stamp(A, "Google"))
    response = client.get(f"/internal/embed/score/{community.id}/{A}")
    assert response.status_code == 200
    body = response.json()
    assert body["stamps"] == [{"id": row.id, "address": A, "provider": "Google", "stamp": row.stamp}]
    assert body["score"]["score"] == "15.00000" and body["success"] is True
    missing = client.get(f"/internal/embed/score/999999/{A}")
    assert (missing.status_code, missing.json()) == (400, {"detail": "Invalid scorer_id"})


@pytest.mark.django_db
def test_an_internal_token_can_be_required(client, community, settings):
    settings.REQUIRE_INTERNAL_API_TOKEN = True
    settings.CGRANTS_API_TOKEN = "internal-secret"
    refused = client.get(f"/internal/embed/score/{community.id}/{A}")
    assert (refused.status_code, refused.json()) == (401, {"detail": "Unauthorized"})
    allowed = client.get(f"/internal/embed/score/{community.id}/{A}", HTTP_AUTHORIZATION="internal-secret")
    assert allowed.status_code == 200


def test_a_database_failure_mid_request_leaves_the_cache_as_it_was(committed_db):
    community = factories.community(weights=WEIGHTS)
    before = factories.cache_stamp(A, signed_stamp(A, "Google"))
    with failing_event_inserts():
        body = {"scorer_id": community.id, "stamps": [signed_stamp(A, "Google", days_valid=9), signed_stamp(A, "Ens")]}
        response = post(Client(raise_request_exception=False), A, body)
    assert response.status_code == 500
    assert [(row.id, row.deleted_at) for row in CeramicCache.objects.all()] == [(before.id, None)]
    assert count_rows("registry_score") == 0


def test_sixteen_concurrent_posts_leave_one_live_row_per_provider(committed_db):
    community = factories.community(weights=WEIGHTS)
    bodies = [
        {"scorer_id": community.id, "stamps": [signed_stamp(A, p, days_valid=10 + i) for p in WEIGHTS]}
        for i in range(16)
    ]
    responses = run_concurrently(16, lambda i: post(Client(), A, bodies[i]))
    assert sorted(response.status_code for response in responses) == [200] * 16
    assert sorted(row.provider for row in live_rows()) == sorted(WEIGHTS)
    assert CeramicCache.objects.count() == 16 * 3


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="stops and restarts the embedded server")
@pytest.mark.skipif(pooler.requested(), reason="direct connection; tests/test_pooler.py has the pooled outage")
def test_with_the_database_down_routes_answer_503_quickly_and_recover(committed_db):
    from settings import embedded_pg

    community = factories.community(weights=WEIGHTS)
    connection.close()
    embedded_pg.stop()
    try:
        client = Client()
        responses = [
            client.get(f"/internal/embed/score/{community.id}/{A}"),
            post(client, A, {"scorer_id": community.id, "stamps": []}),
            client.get(f"/v2/stamps/{community.id}/score/{A}", HTTP_X_API_KEY="abcdefgh.secret"),
        ]
        assert [(r.status_code, r.json()) for r in responses] == [
            (503, {"detail": "Database unavailable."}),
            (503, {"detail": "Database unavailable."}),
            (503, {"error": "Database unavailable."}),
        ]
        assert client.get("/health").status_code == 503
        # Quickly, by construction rather than by a stopwatch: every connection attempt gives up after a few
        # seconds (DB_CONNECT_TIMEOUT), and an unreachable database is answered at once, never retried.
        assert 0 < connection.get_connection_params()["connect_timeout"] <= 5
    finally:
        embedded_pg.ensure_running()
    assert Client().get(f"/internal/embed/score/{community.id}/{A}").status_code == 200


@pytest.mark.skipif(pooler.requested(), reason="ends the session of a direct connection")
@pytest.mark.parametrize(("idle_seconds", "statuses"), [(0, [200, 200]), (60, [503, 200])])
def test_a_reused_connection_is_pinged_only_after_sitting_idle(committed_db, idle_seconds, statuses):
    """The server ends the worker's session between two requests. With the idle window at 0 the reuse ping finds
    the broken link and the request reconnects; a connection used moments ago is trusted without the `SELECT 1`
    round trip, so that one request answers 503 and the next reconnects."""
    community = factories.community(weights=WEIGHTS)
    client = Client()
    path = f"/internal/embed/score/{community.id}/{A}"
    assert client.get(path).status_code == 200
    other = connections.create_connection("default")
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    other.close()
    configured = connection.settings_dict["HEALTH_CHECK_IDLE_SECONDS"]
    connection.settings_dict["HEALTH_CHECK_IDLE_SECONDS"] = idle_seconds
    answers = []
    try:
        for _ in statuses:
            connection.close_if_unusable_or_obsolete()  # what request_started does in a server; the test client not
            answers.append(client.get(path).status_code)
    finally:
        connection.settings_dict["HEALTH_CHECK_IDLE_SECONDS"] = configured
    assert answers == statuses


@pytest.mark.django_db
def test_values_the_database_cannot_store_are_a_400_not_a_500(client, community):
    credential = signed_stamp(A, "Google")
    credential["credentialSubject"]["note"] = "nul \u0000 inside"
    response = post(client, A, {"scorer_id": community.id, "stamps": [credential]})
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "The request holds a value the database cannot store (such as a NUL character)."},
    )
    assert count_rows("ceramic_cache_ceramiccache") == 0
    owner = factories.account()
    key = factories.api_key(owner)
    assert client.get(f"/v2/stamps/ab%00c/score/{A}", HTTP_X_API_KEY=key).status_code == 400
