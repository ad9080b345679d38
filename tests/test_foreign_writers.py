"""A second writer (the original service, which takes none of our advisory locks) commits conflicting rows
between our statements: results stay correct and no request ends in a 5xx. Each test reproduces one interleaving
deterministically: the foreign transaction holds its row locks until our statement waits on them, then commits."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.http import HttpResponse
from django.test import Client

from scorer_fast.models import CeramicCache, HashScorerLink, Passport, Score
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import (
    INTERNAL_AUTH,
    Background,
    count_rows,
    failing_event_inserts,
    foreign_writer,
    wait_until_blocked_by,
)
from tests.tokens import RSA_PUBLIC_PEM, rs256_token

A, B = "0x" + "a" * 40, "0x" + "b" * 40


def score_while_another_writer_commits(community_id: int, address: str, sql: str, params: list) -> HttpResponse:
    """The other writer runs `sql` and keeps its row locks; our scoring request reads, plans and then waits on
    them; only then does the other writer commit."""
    with foreign_writer() as other:
        other.execute(sql, params)
        scoring = Background(lambda: Client().get(f"/internal/score/v2/{community_id}/{address}", **INTERNAL_AUTH))
        wait_until_blocked_by(other)
        other.commit()
        return scoring.result()


def expired_link_of_a(claimant: str) -> int:
    """A holds an expired link on `v0:shared`; the claimant has a stamp with that nullifier."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    expired = datetime.now(UTC) - timedelta(days=1)
    HashScorerLink.objects.create(hash="v0:shared", address=A, community=community, expires_at=expired)
    factories.cache_stamp(claimant, signed_stamp(claimant, "Google", nullifiers=["v0:shared"]))
    return community.id


def test_a_takeover_waiting_on_the_holders_refresh_gives_up_the_link(committed_db):
    """A refreshes its expired link while B, planning against the expired row, takes it over. Before the fix both
    commits landed: A counted the refreshed claim and B then owned the nullifier as well."""
    community_id = expired_link_of_a(B)
    refreshed = datetime.now(UTC) + timedelta(days=30)
    sql = "UPDATE registry_hashscorerlink SET expires_at = %s WHERE hash = 'v0:shared' AND address = %s"
    response = score_while_another_writer_commits(community_id, B, sql, [refreshed, A])

    assert response.status_code == 200
    body = response.json()
    assert body["score"] == "0.00000" and body["stamps"]["Google"]["dedup"] is True
    assert list(HashScorerLink.objects.values_list("address", "expires_at")) == [(A, refreshed)]


def test_a_refresh_waiting_on_a_takeover_loses_the_link(committed_db):
    """The other order: B's takeover commits while A's refresh of its expired link waits; A is then deduplicated."""
    community_id = expired_link_of_a(A)
    taken = datetime.now(UTC) + timedelta(days=30)
    sql = "UPDATE registry_hashscorerlink SET address = %s, expires_at = %s WHERE hash = 'v0:shared'"
    response = score_while_another_writer_commits(community_id, A, sql, [B, taken])

    assert response.status_code == 200
    assert response.json()["stamps"]["Google"]["dedup"] is True
    assert list(HashScorerLink.objects.values_list("address", "expires_at")) == [(B, taken)]


def test_a_passport_row_committed_while_our_upsert_waits_is_used(committed_db):
    """Today's failure: the upsert's insert does nothing and its select's snapshot predates the commit: no row."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    sql = "INSERT INTO registry_passport (address, community_id) VALUES (%s, %s)"
    response = score_while_another_writer_commits(community.id, A, sql, [A, community.id])
    assert response.status_code == 200 and response.json()["score"] == "1.00000"
    assert Passport.objects.count() == 1 and Score.objects.get().status == "DONE"


def test_a_score_row_committed_while_our_upsert_waits_is_used(committed_db):
    community = factories.community(weights={"Google": 1}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    passport = Passport.objects.create(address=A, community=community)
    sql = "INSERT INTO registry_score (passport_id, status) VALUES (%s, 'PROCESSING')"
    response = score_while_another_writer_commits(community.id, A, sql, [passport.id])
    assert response.status_code == 200 and response.json()["score"] == "1.00000"
    assert Score.objects.get().status == "DONE"


@pytest.fixture
def ceramic(settings):
    settings.SIWE_JWT_PUBLIC_KEY = RSA_PUBLIC_PEM
    community = factories.community(weights={"Google": 1}, threshold="1")
    settings.CERAMIC_CACHE_SCORER_ID = community.id
    return community


def test_a_stamp_row_inserted_by_the_original_meanwhile_is_replaced_not_a_500(committed_db, ceramic):
    """The original inserts the same live (address, provider) row after our soft delete ran: our insert hits the
    unique index. The transaction is retried and replaces the foreign row like any earlier one."""
    foreign_stamp = signed_stamp(A, "Google", nullifiers=["v0:foreign"])
    ours = signed_stamp(A, "Google", nullifiers=["v0:ours"])
    with foreign_writer() as original:
        original.execute(
            """
            INSERT INTO ceramic_cache_ceramiccache (type, address, provider, stamp, created_at, updated_at,
                compose_db_save_status, compose_db_stream_id, proof_value)
            VALUES (1, %s, 'Google', %s, now(), now(), '', '', %s)
            """,
            [A, json.dumps(foreign_stamp), foreign_stamp["proof"]["proofValue"]],
        )
        posting = Background(
            lambda: Client().post(
                "/ceramic-cache/stamps/bulk",
                json.dumps([{"provider": "Google", "stamp": ours}]),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {rs256_token(A)}",
            )
        )
        wait_until_blocked_by(original)
        original.commit()
        response = posting.result()
    assert response.status_code == 201, response.content
    assert [stamp["stamp"] for stamp in response.json()["stamps"]] == [ours]
    rows = CeramicCache.objects.filter(address=A).order_by("id")
    assert [(row.stamp == ours, row.deleted_at is None) for row in rows] == [(False, False), (True, True)]


def test_a_lock_held_too_long_by_another_writer_is_a_503_with_the_routes_envelope(committed_db, settings):
    settings.DB_LOCK_TIMEOUT_MS = 200
    community = factories.community(weights={"Google": 1}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    assert Client().get(f"/internal/score/v2/{community.id}/{A}", **INTERNAL_AUTH).status_code == 200
    with foreign_writer() as original:
        original.execute("SELECT id FROM registry_score FOR UPDATE")  # the original's update_or_create locks rows
        scoring = Background(lambda: Client().get(f"/internal/score/v2/{community.id}/{A}", **INTERNAL_AUTH))
        response = scoring.result(timeout=10)
    assert response.status_code == 503
    assert response.json() == {"detail": "Database busy, please retry."}


def test_a_write_conflict_that_outlasts_every_retry_is_a_503_and_writes_nothing(committed_db, caplog):
    """Every attempt of the transaction loses a unique-violation race (a trigger raises 23505 at the last write):
    the request is retried, then answered 503 "busy" with nothing written, never a 500."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    with failing_event_inserts("23505"), caplog.at_level("CRITICAL"):
        response = Client().get(f"/internal/score/v2/{community.id}/{A}", **INTERNAL_AUTH)
    assert (response.status_code, response.json()) == (503, {"detail": "Database busy, please retry."})
    assert (count_rows("registry_passport"), count_rows("registry_score"), count_rows("registry_event")) == (0, 0, 0)


def test_a_row_lock_on_the_passport_does_not_hold_that_address_up(committed_db, settings):
    """Another session keeps the address's passport row locked (FOR UPDATE, as a long admin edit or a stuck
    transaction of the original does): that address's score is still read, recomputed and written at once, since
    no statement of ours locks or updates the passport row once it exists."""
    settings.FF_API_ANALYTICS = True
    community = factories.community(weights={"Google": 1}, threshold="1")
    key = factories.api_key(community.account)
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    submit = json.dumps({"address": A, "scorer_id": community.id})
    requests = {
        "v2-score": lambda: Client().get(f"/v2/stamps/{community.id}/score/{A}", HTTP_X_API_KEY=key),
        "internal-score": lambda: Client().get(f"/internal/score/v2/{community.id}/{A}", **INTERNAL_AUTH),
        "submit-passport": lambda: Client().post(
            "/registry/submit-passport", submit, content_type="application/json", HTTP_X_API_KEY=key
        ),
        "embed-score": lambda: Client().get(f"/internal/embed/score/{community.id}/{A}"),
    }
    assert requests["v2-score"]().status_code == 200  # the passport and score rows exist
    with foreign_writer() as other:
        other.execute("SELECT id FROM registry_passport WHERE address = %s FOR UPDATE", [A])
        answers = {}
        for name, send in requests.items():
            started = time.monotonic()
            answers[name] = (send().status_code, time.monotonic() - started)
        still_held = other.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()").fetchone()
    print(f"\npassport row locked: slowest answer {max(s for _, s in answers.values()):.3f} s")
    assert {name: status for name, (status, _) in answers.items()} == dict.fromkeys(requests, 200)
    # At once (a wait on the row would end in a 503 after the 5 s lock timeout).
    assert max(seconds for _, seconds in answers.values()) < 1.0
    assert still_held and still_held[0] > 0
