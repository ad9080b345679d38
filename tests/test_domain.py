"""Pure domain logic, no database: number formats, LIFO planning, human-points awards."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from scorer_fast.domain.addresses import normalize_address
from scorer_fast.domain.computation import ScoreFields, ScorerConfig, compute_score
from scorer_fast.domain.credentials import CachedStamp, credential_problems
from scorer_fast.domain.dedup import Link, plan_lifo, stamp_nullifiers
from scorer_fast.domain.formats import score_response, score_update_event_json
from scorer_fast.domain.human_points import PROVIDER_ACTIONS, stamp_awards
from scorer_fast.errors import InvalidAddress

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ME, OTHER = "0x" + "a" * 40, "0x" + "b" * 40


def stamp(provider: str, *, nullifiers=None, expires="2027-01-01T00:00:00.000Z", **subject) -> CachedStamp:
    credential_subject = {"provider": provider, "nullifiers": nullifiers or [f"v0:{provider}"], **subject}
    return CachedStamp(provider, {"credentialSubject": credential_subject, "expirationDate": expires})


def config(weights, threshold="20") -> ScorerConfig:
    return ScorerConfig("WEIGHTED_BINARY", weights, Decimal(threshold).quantize(Decimal("0.00001")))


@pytest.mark.parametrize(
    "weights, raw",
    [
        ({"A": 0.525, "B": 0.208}, "0.7330000000000000126565424807"),
        ({"A": 0.525, "B": 0.208, "C": "1.1"}, "1.833000000000000012656542481"),
        ({"A": 15, "B": 15, "C": 15}, "45"),
        ({}, "0"),
    ],
)
def test_raw_scores_keep_the_originals_decimal_float_semantics(weights, raw):
    stamps = [stamp(p) for p in weights] or [stamp("Unweighted")]
    fields = compute_score(kept=stamps, deduplicated={}, config=config(weights), now=NOW)
    assert fields.evidence["rawScore"] == raw
    assert fields.evidence["threshold"] == "20.00000"


def test_stamp_entries_scores_and_expiry():
    kept = [stamp("A", expires="2027-01-02T03:04:05.000Z"), stamp("B", expires="2026-12-08T03:54:49.233320+00:00")]
    deduplicated = {"C": {"expirationDate": "2027-05-05T00:00:00Z"}}
    fields = compute_score(kept=kept, deduplicated=deduplicated, config=config({"A": 0.208}, "0.2"), now=NOW)
    assert fields.stamps == {
        "A": {"score": "0.20800", "dedup": False, "expiration_date": "2027-01-02T03:04:05+00:00"},
        "B": {"score": "0.00000", "dedup": False, "expiration_date": "2026-12-08T03:54:49.233320+00:00"},
        "C": {"score": "0.00000", "dedup": True, "expiration_date": "2027-05-05T00:00:00Z"},
    }
    assert fields.stamp_scores == {"A": 0.208, "B": 0.0}
    assert fields.score == Decimal(1) and fields.expiration_date.isoformat() == "2026-12-08T03:54:49.233320+00:00"


def test_one_config_scores_request_after_request_as_a_fresh_one_does():
    """A worker's cached config keeps what it derived from each weight (ScorerConfig.scored_weight)."""
    weights = {"A": 0.525, "B": "0.208", "C": 15}
    shared = config(weights)
    for providers in (["A", "B"], ["B", "C"], ["C", "Unweighted"], ["A", "B", "C"]):
        kept = [stamp(p) for p in providers]
        assert compute_score(kept=kept, deduplicated={}, config=shared, now=NOW) == compute_score(
            kept=kept, deduplicated={}, config=config(weights), now=NOW
        )
    assert compute_score(kept=[stamp("B")], deduplicated={}, config=shared, now=NOW).stamps["B"]["score"] == "0.20800"


def test_the_response_formats_raw_score_and_threshold_with_five_decimals():
    fields = compute_score(
        kept=[stamp("A"), stamp("B")], deduplicated={}, config=config({"A": 0.525, "B": 0.208}), now=NOW
    )
    body = score_response(ME, fields)
    assert (body["score"], body["threshold"], body["passing_score"]) == ("0.73300", "20.00000", False)
    assert body["last_score_timestamp"] == "2026-11-28T12:00:00+00:00"
    error = score_response(ME, ScoreFields.failed("Invalid rule"))
    assert (error["score"], error["threshold"], error["stamps"], error["error"]) == (
        "0.00000",
        "20.00000",
        {},
        "Invalid rule",
    )


def test_the_scu_event_uses_djangos_serializer_format():
    now = datetime(2026, 11, 28, 3, 54, 49, 594065, tzinfo=UTC)
    fields = compute_score(
        kept=[stamp("A", expires="2026-12-08T03:54:49Z")], deduplicated={}, config=config({"A": 1}), now=now
    )
    data = json.loads(score_update_event_json(score_id=7, passport_id=3, fields=fields))
    assert data["model"] == "registry.score" and data["pk"] == 7
    assert data["fields"]["passport"] == 3 and data["fields"]["score"] == "0"
    assert data["fields"]["last_score_timestamp"] == "2026-11-28T03:54:49.594Z"
    assert data["fields"]["expiration_date"] == "2026-12-08T03:54:49Z"


@pytest.mark.parametrize("raw", ["0x" + "A" * 40, "a" * 40, "0X" + "a" * 40])
def test_addresses_are_lower_cased_then_validated(raw):
    assert normalize_address(raw) == raw.lower()


@pytest.mark.parametrize("raw", ["", "0x" + "a" * 39, "0x" + "a" * 41, " 0x" + "a" * 40, None])
def test_malformed_addresses_are_refused(raw):
    with pytest.raises(InvalidAddress):
        normalize_address(raw)


def test_credential_field_problems_use_the_originals_messages():
    did = "did:pkh:eip155:1:" + ME
    assert credential_problems(None, did) == ["Missing or invalid attribute: credential"]
    assert credential_problems({"a": 1}, did) == ["Missing attribute: credentialSubject"]
    assert credential_problems({"credentialSubject": {"id": did.upper(), "provider": "A", "hash": "h"}}, did) == []
    assert credential_problems({"credentialSubject": {"id": "did:other", "provider": "A"}}, did) == [
        "Missing attribute: hash and nullifiers (either one must be present)",
        "Did mismatch",
    ]


def test_nullifiers_prefer_hash_and_filter_v0_unless_multi():
    assert stamp_nullifiers({"credentialSubject": {"hash": "v0:h", "nullifiers": ["v0:n"]}}, multi_nullifier=False) == [
        "v0:h"
    ]
    subject = {"credentialSubject": {"nullifiers": ["v0:a", "v1:b"]}}
    assert stamp_nullifiers(subject, multi_nullifier=False) == ["v0:a"]
    assert stamp_nullifiers(subject, multi_nullifier=True) == ["v0:a", "v1:b"]


def test_lifo_plan_classifies_own_clashing_and_forfeited_links():
    later, earlier = NOW + timedelta(days=5), NOW - timedelta(days=5)
    links = {"v0:own": Link(ME, later), "v0:held": Link(OTHER, later), "v0:expired": Link(OTHER, earlier)}
    stamps = [
        stamp("Own", nullifiers=["v0:own"]),
        stamp("Clash", nullifiers=["v0:held", "v0:fresh"]),
        stamp("Takeover", nullifiers=["v0:expired", "v0:new"]),
    ]
    plan = plan_lifo(address=ME, community_id=1, stamps=stamps, links=links, now=NOW, multi_nullifier=False)
    assert [s.provider for s in plan.kept] == ["Own", "Takeover"]
    assert list(plan.deduplicated) == ["Clash"]
    assert {(c.hash, c.address) for c in plan.inserts} == {("v0:fresh", OTHER), ("v0:new", ME)}
    assert {(c.hash, c.address, c.expected) for c in plan.updates} == {
        ("v0:own", ME, Link(ME, later)),
        ("v0:expired", ME, Link(OTHER, earlier)),
    }
    assert plan.events == [{"nullifiers": ["v0:held", "v0:fresh"], "provider": "Clash", "community_id": 1}]
    assert [c.hash for c in plan.inserts] == sorted(c.hash for c in plan.inserts)


def test_human_points_awards_for_every_provider_action():
    kept = [stamp(provider, nullifiers=["", f"v1:{provider}"]) for provider in PROVIDER_ACTIONS]
    awards = stamp_awards(kept, providers_with_human_keys={"CleanHands"})
    actions = {(a.action, a.provider, a.tx_hash) for a in awards}
    assert {(action, "", "") for action in PROVIDER_ACTIONS.values()} <= actions
    human_keys = {a.provider for a in awards if a.action == "HKY"}
    assert human_keys == set(PROVIDER_ACTIONS) - {"CleanHands"}
    assert all(a.tx_hash == f"v1:{a.provider}" for a in awards if a.action == "HKY")
    assert (
        stamp_awards(
            [CachedStamp("X", {"credentialSubject": {"provider": "X", "hash": "h"}})], providers_with_human_keys=set()
        )
        == []
    )
