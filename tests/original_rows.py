"""Rows as the original service writes them, built by hand from its documented formats (not through scorer_fast's
own writes): ceramic-cache rows, passport and score rows (stored JSON formats: rawScore as str(Decimal sum) of
Decimal(float) weights, "%.5f" stamp scores, float stamp_scores, isoformat dates, raw expirationDate for
deduplicated stamps), registry_stamp, hash links, and the LDP and SCU events (Django's serializer format).

The test decides what the original decided (which stamps it kept and which it deduplicated); the helper only
writes the rows that decision produces, so the audit is checked against an independent oracle."""

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

LIFO_ERROR = "Failed to save HashScorerLinks"


def _one(statement: str, params: list[Any]) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone() if cursor.description else None
    return row[0] if row else None


def ceramic_row(
    address: str,
    credential: dict[str, Any],
    *,
    created_at: datetime,
    deleted_at: datetime | None = None,
    provider: str | None = None,
) -> int:
    """A V1 row of POST /ceramic-cache/stamps/bulk (soft-deleted at `deleted_at`: updated_at moves with it)."""
    return _one(
        """
        INSERT INTO ceramic_cache_ceramiccache (type, address, provider, stamp, created_at, updated_at, deleted_at,
            compose_db_save_status, compose_db_stream_id, expiration_date, issuance_date, proof_value, source_app,
            source_scorer_id)
        VALUES (1, %s, %s, %s::jsonb, %s, %s, %s, 'pending', '', %s, %s, %s, 1, NULL) RETURNING id
        """,
        [
            address,
            provider or credential["credentialSubject"]["provider"],
            json.dumps(credential),
            created_at,
            deleted_at or created_at,
            deleted_at,
            credential.get("expirationDate"),
            credential.get("issuanceDate"),
            credential["proof"].get("proofValue", "")[:256],
        ],
    )


def revoke(row_id: int) -> None:
    _one("INSERT INTO ceramic_cache_revocation (proof_value, ceramic_cache_id) VALUES ('revoked', %s)", [row_id])


def _passport(address: str, community_id: int) -> int:
    _one(
        "INSERT INTO registry_passport (address, community_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        [address, community_id],
    )
    return _one("SELECT id FROM registry_passport WHERE address = %s AND community_id = %s", [address, community_id])


def _score_row(passport_id: int, values: dict[str, Any]) -> int:
    score_id = _one("SELECT id FROM registry_score WHERE passport_id = %s", [passport_id])
    if score_id is None:
        score_id = _one(
            "INSERT INTO registry_score (passport_id, status) VALUES (%s, 'PROCESSING') RETURNING id", [passport_id]
        )
    _one(
        """
        UPDATE registry_score SET score = %s, last_score_timestamp = %s, status = %s, error = %s, evidence = %s::jsonb,
               stamp_scores = %s::jsonb, stamps = %s::jsonb, expiration_date = %s
        WHERE id = %s
        """,
        [
            values["score"],
            values["last_score_timestamp"],
            values["status"],
            values["error"],
            json.dumps(values["evidence"]) if values["evidence"] is not None else None,
            json.dumps(values["stamp_scores"]) if values["stamp_scores"] is not None else None,
            json.dumps(values["stamps"]) if values["stamps"] is not None else None,
            values["expiration_date"],
            score_id,
        ],
    )
    return score_id


def _event(action: str, address: str, community_id: int, created_at: datetime, data: dict[str, Any]) -> int:
    return _one(
        "INSERT INTO registry_event (action, address, community_id, created_at, data) "
        "VALUES (%s, %s, %s, %s, %s::jsonb) RETURNING id",
        [action, address, community_id, created_at, json.dumps(data)],
    )


def _django_datetime(moment: datetime | None) -> str | None:
    """DjangoJSONEncoder: milliseconds, +00:00 as Z."""
    if moment is None:
        return None
    text = moment.isoformat()
    if moment.microsecond:
        text = text[:23] + text[26:]
    return text.removesuffix("+00:00") + "Z"


def _v0(credential: dict[str, Any]) -> list[str]:
    subject = credential["credentialSubject"]
    values = [subject["hash"]] if "hash" in subject else subject.get("nullifiers", [])
    return [value for value in values if value.startswith("v0")]


def score_like_the_original(
    address: str,
    community_id: int,
    *,
    at: datetime,
    weights: dict[str, Any],
    threshold: str,
    kept: list[dict[str, Any]],
    deduplicated: list[dict[str, Any]] = (),  # type: ignore[assignment]
    row_providers: dict[int, str] | None = None,
) -> int:
    """One successful scoring at `at`: the score row, registry_stamp, hash links of the kept stamps, LDP events
    of the deduplicated ones and the SCU event. Returns the score id. `row_providers`: the ceramic row's provider
    column of kept[i] where it differs from the credential's (the original scores under the column's name)."""
    passport_id = _passport(address, community_id)
    total, stamp_scores, stamps, earliest = Decimal(0), {}, {}, None
    names = [(row_providers or {}).get(i, c["credentialSubject"]["provider"]) for i, c in enumerate(kept)]
    for provider, credential in zip(names, kept, strict=True):
        weight = Decimal(weights.get(provider, 0))
        total += weight
        stamp_scores[provider] = float(weight)
        expires = datetime.fromisoformat(credential["expirationDate"])
        earliest = expires if earliest is None or expires < earliest else earliest
        stamps[provider] = {"score": f"{weight:.5f}", "dedup": False, "expiration_date": expires.isoformat()}
    for credential in deduplicated:
        provider = credential["credentialSubject"]["provider"]
        stamps[provider] = {"score": "0.00000", "dedup": True, "expiration_date": credential["expirationDate"]}
    binary = Decimal(1) if total >= Decimal(threshold) else Decimal(0)
    values = {
        "score": binary,
        "last_score_timestamp": at,
        "status": "DONE",
        "error": None,
        "evidence": {
            "type": "ThresholdScoreCheck",
            "success": bool(binary),
            "rawScore": str(total),
            "threshold": str(Decimal(str(Decimal(threshold).quantize(Decimal("0.00001"))))),
        },
        "stamp_scores": stamp_scores,
        "stamps": stamps,
        "expiration_date": earliest,
    }
    for credential in deduplicated:
        data = {"nullifiers": _v0(credential), "provider": credential["credentialSubject"]["provider"]}
        _event("LDP", address, community_id, at - timedelta(milliseconds=5), {**data, "community_id": community_id})
    for credential in kept:
        for hash_ in _v0(credential):
            _one(
                "INSERT INTO registry_hashscorerlink (hash, address, expires_at, community_id) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (hash, community_id) DO UPDATE SET address = excluded.address, "
                "expires_at = excluded.expires_at",
                [hash_, address, credential["expirationDate"], community_id],
            )
    _one("DELETE FROM registry_stamp WHERE passport_id = %s", [passport_id])
    for provider, credential in zip(names, kept, strict=True):
        _one(
            "INSERT INTO registry_stamp (passport_id, provider, credential) VALUES (%s, %s, %s::jsonb)",
            [passport_id, provider, json.dumps(credential)],
        )
    score_id = _score_row(passport_id, values)
    fields = {
        "passport": passport_id,
        "score": str(binary),
        "last_score_timestamp": _django_datetime(at),
        "status": "DONE",
        "error": None,
        "evidence": values["evidence"],
        "stamp_scores": stamp_scores,
        "stamps": stamps,
        "expiration_date": _django_datetime(earliest),
    }
    _event("SCU", address, community_id, at, {"model": "registry.score", "pk": score_id, "fields": fields})
    return score_id


def error_like_the_original(address: str, community_id: int, message: str) -> int:
    """clear_on_error: everything null but the error (no event)."""
    values = dict.fromkeys(
        ("score", "last_score_timestamp", "evidence", "stamp_scores", "stamps", "expiration_date"), None
    )
    return _score_row(_passport(address, community_id), {**values, "status": "ERROR", "error": message})


def processing_like_the_original(address: str, community_id: int) -> int:
    passport_id = _passport(address, community_id)
    return _one(
        "INSERT INTO registry_score (passport_id, status) VALUES (%s, 'PROCESSING') RETURNING id", [passport_id]
    )
