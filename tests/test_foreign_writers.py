"""A second writer (the original service, which takes none of our advisory locks) commits conflicting rows
between our statements: results stay correct and no request ends in a 5xx. Each test reproduces one interleaving
deterministically: the foreign transaction holds its row locks until our statement waits on them, then commits."""

from datetime import UTC, datetime, timedelta

from django.test import Client

from scorer_fast.models import HashScorerLink
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import Background, foreign_writer, wait_until_blocked_by

A, B = "0x" + "a" * 40, "0x" + "b" * 40


def test_a_takeover_waiting_on_the_holders_refresh_gives_up_the_link(committed_db):
    """A holds an expired link and refreshes it while B, planning against the expired row, takes it over. Before
    the fix both commits landed: A counted the refreshed claim and B then owned the nullifier as well."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    expired = datetime.now(UTC) - timedelta(days=1)
    refreshed = datetime.now(UTC) + timedelta(days=30)
    HashScorerLink.objects.create(hash="v0:shared", address=A, community=community, expires_at=expired)
    factories.cache_stamp(B, signed_stamp(B, "Google", nullifiers=["v0:shared"]))

    with foreign_writer() as holder:
        holder.execute(
            "UPDATE registry_hashscorerlink SET expires_at = %s WHERE hash = 'v0:shared' AND address = %s",
            [refreshed, A],
        )
        taker = Background(lambda: Client().get(f"/internal/score/v2/{community.id}/{B}"))
        wait_until_blocked_by(holder)
        holder.commit()
        response = taker.result()

    assert response.status_code == 200
    body = response.json()
    assert body["score"] == "0.00000" and body["stamps"]["Google"]["dedup"] is True
    assert list(HashScorerLink.objects.values_list("address", "expires_at")) == [(A, refreshed)]


def test_a_refresh_waiting_on_a_takeover_loses_the_link(committed_db):
    """The other order: B's takeover commits while A's refresh of its expired link waits; A is then deduplicated."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    expired = datetime.now(UTC) - timedelta(days=1)
    taken = datetime.now(UTC) + timedelta(days=30)
    HashScorerLink.objects.create(hash="v0:shared", address=A, community=community, expires_at=expired)
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:shared"]))

    with foreign_writer() as taker:
        taker.execute(
            "UPDATE registry_hashscorerlink SET address = %s, expires_at = %s WHERE hash = 'v0:shared'", [B, taken]
        )
        holder = Background(lambda: Client().get(f"/internal/score/v2/{community.id}/{A}"))
        wait_until_blocked_by(taker)
        taker.commit()
        response = holder.result()

    assert response.status_code == 200
    assert response.json()["stamps"]["Google"]["dedup"] is True
    assert list(HashScorerLink.objects.values_list("address", "expires_at")) == [(B, taken)]
