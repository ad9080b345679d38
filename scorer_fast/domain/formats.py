"""Wire and storage formats, defined once: the V2 score object, cached stamps, the SCU event."""

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from scorer_fast.domain.computation import ScoreFields

_STAMP_KEYS = ("score", "dedup", "expiration_date")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def stamp_entry(entry: dict[str, Any]) -> dict[str, Any]:
    shaped = {key: entry.get(key) for key in _STAMP_KEYS}
    if entry.get("source_wallet") is not None:
        shaped["source_wallet"] = entry["source_wallet"]
    return shaped


def score_response(
    address: str,
    fields: ScoreFields,
    *,
    points_data: dict[str, Any] | None = None,
    possible_points_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    evidence = fields.evidence or {}
    raw_score = Decimal(evidence.get("rawScore", "0"))
    threshold = Decimal(evidence.get("threshold", "20"))
    return {
        "address": address,
        "score": format(raw_score, ".5f"),
        "passing_score": raw_score >= threshold,
        "last_score_timestamp": _iso(fields.last_score_timestamp),
        "expiration_timestamp": _iso(fields.expiration_date),
        "threshold": format(threshold, ".5f"),
        "error": fields.error,
        "stamps": {provider: stamp_entry(entry) for provider, entry in (fields.stamps or {}).items()},
        "points_data": points_data,
        "possible_points_data": possible_points_data,
        "linked_score": None,
    }


def cached_stamp_response(row_id: int, address: str, provider: str, stamp: Any) -> dict[str, Any]:
    return {"id": row_id, "address": address, "provider": provider, "stamp": stamp}


def score_update_event_json(*, score_id: int, passport_id: int, fields: ScoreFields) -> str:
    """What Django's `serializers.serialize("json", [score])[0]` produced, as JSON text (registry_event.data):
    datetimes in milliseconds with `Z`, the Decimal score as a string."""
    document = {
        "model": "registry.score",
        "pk": score_id,
        "fields": {
            "passport": passport_id,
            "score": fields.score,
            "last_score_timestamp": fields.last_score_timestamp,
            "status": fields.status,
            "error": fields.error,
            "evidence": fields.evidence,
            "stamp_scores": fields.stamp_scores,
            "stamps": fields.stamps,
            "expiration_date": fields.expiration_date,
        },
    }
    return json.dumps(document, cls=DjangoJSONEncoder)


def detailed_score_response(address: str, fields: ScoreFields, *, scorer_type: str) -> dict[str, Any]:
    """The v1 `DetailedScoreResponse` of POST /registry/submit-passport. Threshold scorers: the binary score as
    `str(Decimal)` ("1"/"0") and float evidence; WEIGHTED scorers: the raw score with 9 decimals ("0E-9" for zero,
    as Decimal.quantize writes it) and no evidence."""
    evidence = fields.evidence
    if scorer_type == "WEIGHTED":
        score = _nine_decimals(evidence["rawScore"]) if evidence else _optional_str(fields.score)
        shown_evidence = None
    else:
        score = _optional_str(fields.score)
        shown_evidence = evidence and {
            "type": evidence["type"],
            "success": evidence["success"],
            "rawScore": float(evidence["rawScore"]),
            "threshold": float(evidence["threshold"]),
        }
    return {
        "address": address,
        "score": score,
        "status": fields.status,
        "last_score_timestamp": _iso(fields.last_score_timestamp),
        "expiration_date": _iso(fields.expiration_date),
        "evidence": shown_evidence,
        "error": fields.error,
        "stamp_scores": fields.stamp_scores or {},
    }


def _nine_decimals(raw_score: str) -> str:
    try:
        return str(Decimal(raw_score).quantize(Decimal("0.000000000")))
    except InvalidOperation:
        return raw_score


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
