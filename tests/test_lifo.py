"""LIFO de-duplication through registry_hashscorerlink (§6.6, decision 13)."""

from datetime import UTC, datetime, timedelta

import pytest

from scorer_fast.models import Event, HashScorerLink, Score
from tests import factories
from tests.credentials import ED25519_ISSUER_JWK, signed_stamp
from tests.helpers import INTERNAL_AUTH

pytestmark = pytest.mark.django_db
A, B = "0x" + "a" * 40, "0x" + "b" * 40


def score(client, community, address):
    response = client.get(f"/internal/score/v2/{community.id}/{address}", **INTERNAL_AUTH)
    assert response.status_code == 200, response.content
    return response.json()


def holders(community) -> dict[str, str]:
    return dict(HashScorerLink.objects.filter(community=community).values_list("hash", "address"))


@pytest.fixture
def community():
    return factories.community(weights={"Google": 1, "Ens": 2})


@pytest.mark.parametrize(
    "first, second",
    [
        (["v0:n1"], ["v0:n1"]),  # one nullifier
        (["v0:n1", "v0:n2"], ["v0:n2", "v0:n3"]),  # two nullifiers, clash on one
        (["v0:n1"], ["v0:n9", "v0:n1"]),  # the first claim had one, the second has two
    ],
)
def test_a_second_address_gets_the_stamp_marked_as_deduplicated(client, community, first, second):
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=first))
    duplicate = signed_stamp(B, "Google", nullifiers=second)
    factories.cache_stamp(B, duplicate)
    assert score(client, community, A)["score"] == "1.00000"

    body = score(client, community, B)

    assert body["score"] == "0.00000"
    assert body["stamps"] == {
        "Google": {"score": "0.00000", "dedup": True, "expiration_date": duplicate["expirationDate"]}
    }
    assert all(owner == A for owner in holders(community).values())
    assert set(holders(community)) == set(first) | set(second)  # the clash holder gets the back-filled ones
    event = Event.objects.get(action="LDP")
    assert (event.address, event.community_id) == (B, community.id)
    assert event.data == {"nullifiers": second, "provider": "Google", "community_id": community.id}
    assert score(client, community, A)["score"] == "1.00000"  # the holder keeps it


def test_back_filled_links_take_the_clash_holders_expiry(client, community):
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:n1"], days_valid=5))
    factories.cache_stamp(B, signed_stamp(B, "Google", nullifiers=["v0:n1", "v0:n2"], days_valid=50))
    score(client, community, A)
    score(client, community, B)
    n1, n2 = (HashScorerLink.objects.get(hash=h) for h in ("v0:n1", "v0:n2"))
    assert (n2.address, n2.expires_at) == (A, n1.expires_at)


def test_legacy_hash_credentials_deduplicate_too(client, community):
    for address in (A, B):  # legacy stamps: Ed25519 / did:key with a `hash` instead of nullifiers
        factories.cache_stamp(
            address, signed_stamp(address, "Google", hash_value="v0:legacy", issuer_jwk=ED25519_ISSUER_JWK)
        )
    assert score(client, community, A)["score"] == "1.00000"
    assert score(client, community, B)["stamps"]["Google"]["dedup"] is True


def test_the_same_stamp_scores_in_two_communities(client, community):
    other = factories.community(weights={"Google": 1})
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:n1"]))
    factories.cache_stamp(B, signed_stamp(B, "Google", nullifiers=["v0:n1"]))
    assert score(client, community, A)["score"] == "1.00000"
    assert score(client, other, B)["score"] == "1.00000"
    assert holders(community) == {"v0:n1": A} and holders(other) == {"v0:n1": B}


def test_an_expired_claim_is_taken_over(client, community):
    HashScorerLink.objects.create(
        hash="v0:n1", address=A, community=community, expires_at=datetime.now(UTC) - timedelta(days=1)
    )
    credential = signed_stamp(B, "Google", nullifiers=["v0:n1"])
    factories.cache_stamp(B, credential)
    assert score(client, community, B)["score"] == "1.00000"
    link = HashScorerLink.objects.get()
    assert (link.address, link.expires_at) == (B, datetime.fromisoformat(credential["expirationDate"]))


def test_rescoring_refreshes_the_own_links_expiry(client, community):
    HashScorerLink.objects.create(
        hash="v0:n1", address=A, community=community, expires_at=datetime.now(UTC) + timedelta(days=1)
    )
    credential = signed_stamp(A, "Google", nullifiers=["v0:n1"], days_valid=60)
    factories.cache_stamp(A, credential)
    score(client, community, A)
    assert HashScorerLink.objects.get().expires_at == datetime.fromisoformat(credential["expirationDate"])


@pytest.mark.parametrize("multi_nullifier, b_deduplicated", [(False, False), (True, True)])
def test_only_v0_nullifiers_count_unless_the_multi_nullifier_flag_is_on(
    client, community, settings, multi_nullifier, b_deduplicated
):
    settings.FF_MULTI_NULLIFIER = multi_nullifier
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v1:shared"]))
    factories.cache_stamp(B, signed_stamp(B, "Google", nullifiers=["v1:shared"]))
    score(client, community, A)
    assert score(client, community, B)["stamps"]["Google"]["dedup"] is b_deduplicated
    assert HashScorerLink.objects.count() == (1 if multi_nullifier else 0)


def test_a_v0_clash_deduplicates_with_the_flag_off(client, community, settings):
    settings.FF_MULTI_NULLIFIER = False
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:n1", "v1:x"]))
    factories.cache_stamp(B, signed_stamp(B, "Google", nullifiers=["v0:n1", "v1:y"]))
    score(client, community, A)
    assert score(client, community, B)["stamps"]["Google"]["dedup"] is True
    assert holders(community) == {"v0:n1": A}


def test_a_deduplicated_stamp_never_back_fills_a_nullifier_the_address_holds(client, community):
    """Decision 13: the original ends this in a score error after 5 failed attempts."""
    factories.cache_stamp(B, signed_stamp(B, "Ens", nullifiers=["v0:mine"]))
    score(client, community, B)
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:theirs"]))
    score(client, community, A)
    factories.cache_stamp(B, signed_stamp(B, "Google", nullifiers=["v0:theirs", "v0:mine"]))
    body = score(client, community, B)
    assert body["error"] is None and body["score"] == "2.00000"
    assert body["stamps"]["Google"]["dedup"] is True
    assert holders(community) == {"v0:mine": B, "v0:theirs": A}


def test_two_kept_stamps_sharing_a_nullifier_make_one_link(client, community):
    """Decision 13: the original ends this in a score error (both stamps insert the same link)."""
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:same"]))
    factories.cache_stamp(A, signed_stamp(A, "Ens", nullifiers=["v0:same"]))
    body = score(client, community, A)
    assert body["error"] is None and body["score"] == "3.00000"
    assert holders(community) == {"v0:same": A}
    assert Score.objects.get().status == "DONE"
