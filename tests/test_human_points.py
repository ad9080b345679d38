"""Human Points writes during scoring (§6.11), behind their flags."""

import pytest

from scorer_fast.models import (
    AddressList,
    AddressListMember,
    HumanPoints,
    HumanPointsCommunityQualifiedUsers,
)
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import INTERNAL_AUTH

pytestmark = pytest.mark.django_db
A = "0x" + "a" * 40


@pytest.fixture
def points_on(settings):
    settings.HUMAN_POINTS_WRITE_ENABLED = True
    settings.HUMAN_POINTS_START_TIMESTAMP = 0
    return settings


def score(client, community):
    return client.get(f"/internal/score/v2/{community.id}/{A}", **INTERNAL_AUTH).json()


def actions() -> set[tuple[str, str, str]]:
    return set(HumanPoints.objects.values_list("action", "provider", "tx_hash"))


def test_a_passing_score_earns_human_keys_and_provider_actions(client, points_on):
    community = factories.community(weights={"SelfStakingGold": 30, "Google": 1}, human_points_program=True)
    factories.cache_stamp(A, signed_stamp(A, "SelfStakingGold", nullifiers=["v0:gold"]))
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:g1", "v1:g2"]))
    assert score(client, community)["passing_score"] is True
    assert actions() == {
        ("HKY", "SelfStakingGold", "v0:gold"),
        ("HKY", "Google", "v1:g2"),
        ("ISG", "", ""),
    }
    assert HumanPointsCommunityQualifiedUsers.objects.filter(address=A, community=community).exists()
    score(client, community)  # repeats write nothing new
    assert HumanPoints.objects.count() == 3


def test_the_scoring_bonus_needs_four_qualified_communities(client, points_on):
    communities = [factories.community(weights={"Google": 30}, human_points_program=True) for _ in range(4)]
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    for community in communities[:3]:
        score(client, community)
    assert not HumanPoints.objects.filter(action="SCB").exists()
    score(client, communities[3])
    assert HumanPoints.objects.filter(action="SCB", address=A).count() == 1


@pytest.mark.parametrize(
    "write_enabled, program, weight",
    [(False, True, 30), (True, False, 30), (True, True, 1)],  # flag off, not in the programme, not passing
)
def test_no_points_without_flag_programme_and_a_pass(client, settings, write_enabled, program, weight):
    settings.HUMAN_POINTS_WRITE_ENABLED = write_enabled
    community = factories.community(weights={"Google": weight}, human_points_program=program)
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    score(client, community)
    assert HumanPoints.objects.count() == 0 and HumanPointsCommunityQualifiedUsers.objects.count() == 0


def test_list_members_earn_list_actions_when_enabled(client, points_on):
    points_on.HUMAN_POINTS_MTA_ENABLED = True
    AddressListMember.objects.create(address=A, list=AddressList.objects.create(name="MetaMaskOG2"))
    community = factories.community(weights={"Google": 30}, human_points_program=True)
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    score(client, community)
    score(client, community)
    assert HumanPoints.objects.filter(action="MM2", address=A).count() == 1
