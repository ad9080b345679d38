"""Human Points: which actions a passing score earns, and the points summary shown to the Passport app."""

from dataclasses import dataclass
from typing import Any

from scorer_fast.domain.credentials import CachedStamp

PROVIDER_ACTIONS = {
    "SelfStakingBronze": "ISB",
    "SelfStakingSilver": "ISS",
    "SelfStakingGold": "ISG",
    "BeginnerCommunityStaker": "CSB",
    "ExperiencedCommunityStaker": "CSE",
    "TrustedCitizen": "CST",
    "HolonymGovIdProvider": "HGO",
    "HolonymPhone": "HPH",
    "CleanHands": "HCH",
    "Biometrics": "HBI",
}
HUMAN_KEYS = "HKY"
SCORING_BONUS = "SCB"
SCORING_BONUS_MIN_COMMUNITIES = 4
# (address list name, action, global cap or None)
LIST_ACTIONS = (("MetaMaskOG2", "MM2", 5000), ("SeasonedPassportOGs", "SOG", None), ("TheChosenOnes", "TCO", None))


@dataclass(frozen=True)
class PointsAward:
    action: str
    provider: str = ""
    tx_hash: str = ""


def stamp_awards(kept: list[CachedStamp], *, providers_with_human_keys: set[str]) -> list[PointsAward]:
    awards = []
    for stamp in kept:
        subject = stamp.credential.get("credentialSubject") or {}
        nullifiers = subject.get("nullifiers")
        provider = subject.get("provider")
        if isinstance(nullifiers, list) and any(nullifiers) and provider and provider not in providers_with_human_keys:
            last_nullifier = [value for value in nullifiers if value][-1]
            awards.append(PointsAward(HUMAN_KEYS, provider=provider, tx_hash=last_nullifier))
        if action := PROVIDER_ACTIONS.get(stamp.provider):
            awards.append(PointsAward(action))
    return awards


def points_summary(
    rows: list[tuple[str, int, int, int]], *, is_eligible: bool, active_config: dict[str, int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """rows: (action, chain_id, points, multiplier) per group, as the original's query returns them."""
    breakdown: dict[str, int] = {}
    total = 0
    for action, chain_id, points, _multiplier in rows:
        total += points
        breakdown[action] = breakdown.get(action, 0) + points
        if chain_id != 0:
            breakdown[f"{action}_{chain_id}"] = points
    multiplier = rows[0][3] if rows else 1
    points_data = {"total_points": total, "is_eligible": is_eligible, "multiplier": multiplier, "breakdown": breakdown}
    possible = {"total_points": 0, "is_eligible": False, "multiplier": multiplier, "breakdown": dict(active_config)}
    return points_data, possible
