"""ceramic_cache_ceramiccache (and its revocations): the stamps an address holds."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scorer_fast.db import sql
from scorer_fast.domain.credentials import CachedStamp

CERAMIC_TYPE_V1 = 1

# Live, unrevoked rows (any type); per provider the latest updated_at wins. The stamp comes as jsonb's own text
# (canonical: one text per value), which keys the proof cache and is compared before anything is parsed; `subject`
# (its credentialSubject, still jsonb) lets a statement that embeds this one read the nullifiers without parsing;
# `version` is the row version (id and xmin: a row someone updated has a new xmin). A statement that embeds this one
# and uses only some columns does not compute the others (PostgreSQL drops unused subquery outputs).
SCORING_STAMPS = """
    SELECT DISTINCT ON (cc.provider) cc.provider, cc.stamp::text AS stamp, cc.stamp -> 'credentialSubject' AS subject,
           cc.id::text || '.' || cc.xmin::text AS version
    FROM ceramic_cache_ceramiccache cc
    WHERE cc.address = %(address)s AND cc.deleted_at IS NULL
      AND NOT EXISTS (SELECT FROM ceramic_cache_revocation r WHERE r.ceramic_cache_id = cc.id)
    ORDER BY cc.provider, cc.updated_at DESC, cc.id
"""


# [provider, stamp text, row version] per live stamp, by provider: how statements embed SCORING_STAMPS.
SCORING_STAMPS_ARRAY = (
    f"ARRAY(SELECT ARRAY[t.provider, t.stamp, t.version] FROM ({SCORING_STAMPS}) t ORDER BY t.provider)"
)
# Only the row versions, in the same order: what the stamps read before a transaction are checked against.
SCORING_STAMP_VERSIONS_ARRAY = f"ARRAY(SELECT t.version FROM ({SCORING_STAMPS}) t ORDER BY t.provider)"


def cached_stamps(triples: list[list[str]], known: Mapping[str, CachedStamp] | None = None) -> list[CachedStamp]:
    """[provider, stamp text, version] triples, as SCORING_STAMPS_ARRAY returns them. A text in `known` (stamps
    this request already read) is not parsed again: equal texts are the same jsonb value."""
    known = known or {}
    return [
        CachedStamp(provider, known[text].credential if text in known else sql.json_value(text), text, version)
        for provider, text, version in triples
    ]


def scoring_stamps(address: str) -> list[CachedStamp]:
    """The address's live stamps for scoring, alone (when the community comes from the per-worker cache)."""
    row = sql.one(f"SELECT {SCORING_STAMPS_ARRAY}", {"address": address})
    return cached_stamps(row[0] if row else [])


@dataclass(frozen=True)
class LiveStampRow:
    id: int
    address: str
    provider: str
    stamp: Any


def stamps_live(address: str) -> list[LiveStampRow]:
    """The stamp list the routes return: V1, live, unrevoked (uses idx_cc_addr_id_not_deleted)."""
    found = sql.fetch_all(
        LiveStampRow,
        """
        SELECT cc.id, cc.address, cc.provider, cc.stamp
        FROM ceramic_cache_ceramiccache cc
        LEFT JOIN ceramic_cache_revocation r ON r.ceramic_cache_id = cc.id
        WHERE cc.address = %s AND cc.type = %s AND cc.deleted_at IS NULL AND r.id IS NULL
        ORDER BY cc.id
        """,
        [address, CERAMIC_TYPE_V1],
    )
    return [LiveStampRow(row.id, row.address, row.provider, sql.json_value(row.stamp)) for row in found]


def soft_delete(address: str, providers: list[str], now: datetime, *, v1_only: bool) -> int:
    """Soft delete live rows (revoked ones too). POST touches V1 rows only; PATCH and DELETE any type."""
    return sql.execute(
        """
        UPDATE ceramic_cache_ceramiccache SET updated_at = %s, deleted_at = %s
        WHERE address = %s AND provider = ANY(%s::text[]) AND deleted_at IS NULL AND (%s OR type = %s)
        """,
        [now, now, address, providers, not v1_only, CERAMIC_TYPE_V1],
    )


@dataclass(frozen=True)
class NewCeramicRow:
    provider: str
    stamp: dict[str, Any]
    proof_value: str
    issuance_date: datetime | None
    expiration_date: datetime | None


def insert(
    address: str, rows: list[NewCeramicRow], now: datetime, *, source_app: int | None, source_scorer_id: int | None
) -> None:
    if not rows:
        return
    values = ", ".join(["(%s, %s, %s, %s::jsonb, %s, %s, NULL, 'pending', '', %s, %s, %s, %s, %s)"] * len(rows))
    params: list[Any] = []
    for row in rows:
        params += [
            CERAMIC_TYPE_V1,
            address,
            row.provider,
            sql.jsonb(row.stamp),
            now,
            now,
            row.expiration_date,
            row.issuance_date,
            row.proof_value,
            source_app,
            source_scorer_id,
        ]
    sql.execute(
        f"""
        INSERT INTO ceramic_cache_ceramiccache
            (type, address, provider, stamp, created_at, updated_at, deleted_at, compose_db_save_status,
             compose_db_stream_id, expiration_date, issuance_date, proof_value, source_app, source_scorer_id)
        VALUES {values}
        """,
        params,
    )
