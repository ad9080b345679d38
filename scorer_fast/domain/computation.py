"""The weighted score with the original's exact number semantics.

Weights arrive from jsonb as Python floats (or strings from customizations); `Decimal(float)` keeps the exact
binary expansion and the sum is rounded to 28 significant digits, so `rawScore` strings match the original's
(e.g. 0.525 + 0.208 → "0.7330000000000000126565424807").
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from functools import cached_property
from typing import Any

from scorer_fast.domain.credentials import CachedStamp, kept_expiration

_PYTHON_DEFAULT_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)
ONE, ZERO = Decimal(1), Decimal(0)


@dataclass(frozen=True)
class ScorerConfig:
    scorer_type: str
    weights: dict[str, Any]
    threshold: Decimal

    @cached_property
    def _scored_weights(self) -> dict[str, tuple[Decimal, float, str]]:
        """Per provider, what compute_score derives from its weight, filled as providers are scored: a config is
        read once and serves a worker's requests (nothing changes its weights), and Decimal's conversions and
        formatting were the largest part of scoring's Python."""
        return {}

    def scored_weight(self, provider: str) -> tuple[Decimal, float, str]:
        """The provider's weight as a Decimal, as the float stored in stamp_scores, and as the "score" string."""
        found = self._scored_weights.get(provider)
        if found is None:
            weight = as_decimal(self.weights.get(provider, 0))
            found = self._scored_weights[provider] = (weight, float(weight), f"{weight:.5f}")
        return found


@dataclass(frozen=True)
class ScoreFields:
    """The columns of registry_score that a scoring run sets."""

    score: Decimal | None
    status: str
    last_score_timestamp: datetime | None
    error: str | None
    evidence: dict[str, Any] | None
    stamp_scores: dict[str, float] | None
    stamps: dict[str, dict[str, Any]] | None
    expiration_date: datetime | None

    @classmethod
    def failed(cls, message: str) -> "ScoreFields":
        """The original's clear_on_error: everything null but the error."""
        return cls(None, "ERROR", None, message, None, None, None, None)


def as_decimal(weight: Any) -> Decimal:
    return Decimal(weight) if isinstance(weight, (int, float, str, Decimal)) else ZERO


def compute_score(
    *, kept: list[CachedStamp], deduplicated: dict[str, dict[str, Any]], config: ScorerConfig, now: datetime
) -> ScoreFields:
    with localcontext(_PYTHON_DEFAULT_CONTEXT):
        total = ZERO
        stamp_scores: dict[str, float] = {}
        stamps: dict[str, dict[str, Any]] = {}
        earliest: datetime | None = None
        for stamp in kept:
            if stamp.provider in stamp_scores:
                continue
            weight, stored_weight, score_text = config.scored_weight(stamp.provider)
            total += weight
            stamp_scores[stamp.provider] = stored_weight
            expires = kept_expiration(stamp.credential)
            if earliest is None or expires < earliest:
                earliest = expires
            stamps[stamp.provider] = {"score": score_text, "dedup": False, "expiration_date": expires.isoformat()}
        for provider, credential in deduplicated.items():
            if provider not in stamps:
                stamps[provider] = {
                    "score": "0.00000",
                    "dedup": True,
                    "expiration_date": credential.get("expirationDate"),
                }
        binary = ONE if total >= config.threshold else ZERO
        evidence = {
            "type": "ThresholdScoreCheck",
            "success": bool(binary),
            "rawScore": str(total),
            "threshold": str(Decimal(str(config.threshold))),
        }
    return ScoreFields(binary, "DONE", now, None, evidence, stamp_scores, stamps, earliest)
