"""Request and response shapes (the OpenAPI page is generated from these). Key order is the wire order."""

from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field


class StampEntry(Schema):
    """One entry of a score's `stamps` (documentation only: see scorer_fast/openapi.py)."""

    score: str = Field(description="What the stamp added to the score, 5 decimal places (0 when de-duplicated).")
    dedup: bool = Field(description="Another address already uses this credential in this scorer: it adds 0.")
    expiration_date: str | None = Field(description="When the stamp expires (ISO 8601, UTC).")


class ScoreOut(Schema):
    address: str
    score: str
    passing_score: bool
    last_score_timestamp: str | None
    expiration_timestamp: str | None
    threshold: str
    error: str | None
    stamps: dict[str, dict[str, Any]]
    points_data: dict[str, Any] | None
    possible_points_data: dict[str, Any] | None
    linked_score: dict[str, Any] | None


class CachedStampOut(Schema):
    id: int
    address: str
    provider: str
    stamp: Any


class StampsOut(Schema):
    success: bool
    stamps: list[CachedStampOut]


class StampsWithScoreOut(StampsOut):
    score: ScoreOut


class EmbedRateLimitOut(Schema):
    embed_rate_limit: str | None


class ErrorOut(Schema):
    error: str


class DetailOut(Schema):
    detail: Any


class AddStampsIn(Schema):
    scorer_id: int
    stamps: list[Any]


class CacheStampIn(Schema):
    model_config = ConfigDict(extra="ignore")

    address: str | None = None
    provider: Any = None
    stamp: Any = None


class DeleteStampIn(Schema):
    model_config = ConfigDict(extra="ignore")

    address: str | None = None
    provider: Any = None


class ScorePostIn(Schema):
    alternate_scorer_id: int | None = None


class HealthOut(Schema):
    status: str
    database: str


class SubmitPassportIn(Schema):
    """Documentation of POST /registry/submit-passport's body (the service reads it itself, to name problems)."""

    address: str
    scorer_id: str | int | None = ""
    community: str | None = "Deprecated"
    signature: str = ""
    nonce: str = ""


class ThresholdEvidenceOut(Schema):
    type: str
    success: bool
    rawScore: float  # noqa: N815 - the wire name
    threshold: float


class DetailedScoreOut(Schema):
    address: str
    score: str | None
    status: str
    last_score_timestamp: str | None
    expiration_date: str | None
    evidence: ThresholdEvidenceOut | None
    error: str | None
    stamp_scores: dict[str, float]
