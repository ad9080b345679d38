"""Read-only statements of the rollout audit (`manage.py audit_scores`): stored scores in keyset batches with the
ceramic-cache rows that were live at each score's scoring time, the hash links of their nullifiers, and the
history (events, registry stamps) that can show why a stored score differs. Nothing here writes or locks."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection

from scorer_fast.db import sql
from scorer_fast.domain.computation import ScoreFields
from scorer_fast.domain.dedup import Link


@dataclass(frozen=True)
class Selection:
    """Which stored scores to audit (each filter optional; addresses lower-cased)."""

    communities: Sequence[int] = ()
    addresses: Sequence[str] = ()
    since: datetime | None = None


@dataclass(frozen=True)
class CeramicRow:
    """A ceramic_cache_ceramiccache row that was live at the scoring time (created before it, not deleted before
    it). `updated_at` after the scoring time on a row that is not deleted means the row was rewritten since."""

    id: int
    provider: str
    text: str
    updated_at: datetime
    deleted: bool
    revoked: bool


@dataclass(frozen=True)
class StoredScore:
    score_id: int
    passport_id: int
    address: str | None
    community_id: int | None
    community_exists: bool
    fields: ScoreFields  # as stored, jsonb columns parsed as the original did
    rows: list[CeramicRow]


@dataclass(frozen=True)
class _ScoreRecord:
    score_id: int
    passport_id: int
    address: str | None
    community_id: int | None
    community_exists: bool
    status: str | None
    score: Decimal | None
    error: str | None
    last_score_timestamp: datetime | None
    evidence: Any
    stamp_scores: Any
    stamps: Any
    expiration_date: datetime | None
    row_ids: list[int] | None
    row_providers: list[str] | None
    row_stamps: list[str] | None
    row_updated: list[datetime] | None
    row_deleted: list[bool] | None
    row_revoked: list[bool] | None


# Live at T = last_score_timestamp: created before T (a NULL created_at predates the column) and not deleted by
# then. Revoked rows come too (flagged): a revocation carries no time. Per provider the newest creation first,
# which is what the newest `updated_at` was at T (only a soft delete moves `updated_at` of a row).
_BATCH = """
SELECT s.id AS score_id, s.passport_id, p.address, p.community_id, c.id IS NOT NULL AS community_exists,
       s.status, s.score, s.error, s.last_score_timestamp, s.evidence, s.stamp_scores, s.stamps, s.expiration_date,
       cc.row_ids, cc.row_providers, cc.row_stamps, cc.row_updated, cc.row_deleted, cc.row_revoked
FROM registry_score s
JOIN registry_passport p ON p.id = s.passport_id
LEFT JOIN account_community c ON c.id = p.community_id
LEFT JOIN LATERAL (
    SELECT array_agg(x.id ORDER BY x.provider, x.created_at DESC NULLS LAST, x.id) AS row_ids,
           array_agg(x.provider ORDER BY x.provider, x.created_at DESC NULLS LAST, x.id) AS row_providers,
           array_agg(x.stamp::text ORDER BY x.provider, x.created_at DESC NULLS LAST, x.id) AS row_stamps,
           array_agg(x.updated_at ORDER BY x.provider, x.created_at DESC NULLS LAST, x.id) AS row_updated,
           array_agg(x.deleted_at IS NOT NULL ORDER BY x.provider, x.created_at DESC NULLS LAST, x.id) AS row_deleted,
           array_agg(r.id IS NOT NULL ORDER BY x.provider, x.created_at DESC NULLS LAST, x.id) AS row_revoked
    FROM ceramic_cache_ceramiccache x
    LEFT JOIN ceramic_cache_revocation r ON r.ceramic_cache_id = x.id
    WHERE s.last_score_timestamp IS NOT NULL AND x.address = p.address
      AND (x.created_at IS NULL OR x.created_at < s.last_score_timestamp)
      AND (x.deleted_at IS NULL OR x.deleted_at > s.last_score_timestamp)
) cc ON true
WHERE s.id > %(after)s {filters}
ORDER BY s.id
LIMIT %(batch)s
"""


def _filters(selection: Selection) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if selection.communities:
        clauses.append("p.community_id = ANY(%(communities)s::bigint[])")
        params["communities"] = list(selection.communities)
    if selection.addresses:
        clauses.append("p.address = ANY(%(addresses)s::text[])")
        params["addresses"] = list(selection.addresses)
    if selection.since is not None:
        clauses.append("s.last_score_timestamp >= %(since)s")
        params["since"] = selection.since
    return "".join(f" AND {clause}" for clause in clauses), params


def begin_read_only() -> None:
    """The first statement of each batch's transaction: one consistent snapshot, no writes possible (a write fails
    with SQLSTATE 25006), and bounded statements. Works on a hot-standby replica."""
    sql.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    sql.execute("SELECT set_config('statement_timeout', %s, true)", [f"{settings.DB_STATEMENT_TIMEOUT_MS}ms"])


def stored_scores(selection: Selection, *, after: int, batch: int) -> list[StoredScore]:
    """The next `batch` stored scores with an id above `after`, in id order."""
    filters, params = _filters(selection)
    records = sql.fetch_all(_ScoreRecord, _BATCH.format(filters=filters), {**params, "after": after, "batch": batch})
    return [_stored(record) for record in records]


def _stored(record: _ScoreRecord) -> StoredScore:
    rows = []
    if record.row_ids:
        columns = (
            record.row_ids,
            record.row_providers or [],
            record.row_stamps or [],
            record.row_updated or [],
            record.row_deleted or [],
            record.row_revoked or [],
        )
        rows = [CeramicRow(*values) for values in zip(*columns, strict=True)]
    return StoredScore(
        score_id=record.score_id,
        passport_id=record.passport_id,
        address=record.address,
        community_id=record.community_id,
        community_exists=record.community_exists,
        fields=ScoreFields(
            score=record.score,
            status=record.status or "",
            last_score_timestamp=record.last_score_timestamp,
            error=record.error,
            evidence=sql.json_value(record.evidence),
            stamp_scores=sql.json_value(record.stamp_scores),
            stamps=sql.json_value(record.stamps),
            expiration_date=record.expiration_date,
        ),
        rows=rows,
    )


def selected_count(selection: Selection) -> int:
    filters, params = _filters(selection)
    return sql.count(
        f"SELECT COUNT(*) FROM registry_score s JOIN registry_passport p ON p.id = s.passport_id WHERE TRUE{filters}",
        params,
    )


def missing_communities(ids: Sequence[int]) -> list[int]:
    found = {row[0] for row in sql.rows("SELECT id FROM account_community WHERE id = ANY(%s::bigint[])", [list(ids)])}
    return [community_id for community_id in ids if community_id not in found]


def links_of(keys: Sequence[tuple[int, str]]) -> dict[int, dict[str, Link]]:
    """The current registry_hashscorerlink rows of (community, nullifier) pairs, per community."""
    found: dict[int, dict[str, Link]] = {}
    if not keys:
        return found
    for community_id, hash_, address, expires_at in sql.rows(
        "SELECT l.community_id, l.hash, l.address, l.expires_at FROM registry_hashscorerlink l "
        "JOIN unnest(%s::bigint[], %s::text[]) AS k(community_id, hash) "
        "ON l.community_id = k.community_id AND l.hash = k.hash",
        [[key[0] for key in keys], [key[1] for key in keys]],
    ):
        found.setdefault(community_id, {})[hash_] = Link(address, expires_at)
    return found


def registry_stamps(passport_id: int) -> list[tuple[str, str]]:
    """registry_stamp of the passport: the stamps the latest scoring kept, as (provider, credential text)."""
    return [
        (provider, text)
        for provider, text in sql.rows(
            "SELECT provider, credential::text FROM registry_stamp WHERE passport_id = %s ORDER BY id", [passport_id]
        )
    ]


@dataclass(frozen=True)
class LaterWrite:
    """The SCU event of a later scoring in which the holder kept a stamp carrying the nullifier: that scoring wrote
    the nullifier's link (a kept stamp always refreshes or takes over its links)."""

    event_id: int
    provider: str
    at: datetime


def link_written_after(*, community_id: int, hash_: str, holder: str, after: datetime) -> LaterWrite | None:
    """The first SCU event of `holder` in the community after `after` whose stamps show kept (dedup false) a
    provider of one of the holder's ceramic-cache rows that was live then and carries `hash_`."""
    row = sql.one(
        """
        SELECT e.id, x.provider, e.created_at
        FROM registry_event e
        JOIN ceramic_cache_ceramiccache x ON x.address = e.address
             AND (x.created_at IS NULL OR x.created_at < e.created_at)
             AND (x.deleted_at IS NULL OR x.deleted_at > e.created_at)
        WHERE e.action = 'SCU' AND e.address = %(holder)s AND e.community_id = %(community)s
          AND e.created_at > %(after)s
          AND (x.stamp -> 'credentialSubject' -> 'nullifiers' ? %(hash)s
               OR x.stamp -> 'credentialSubject' ->> 'hash' = %(hash)s)
          AND e.data #> ARRAY['fields', 'stamps', x.provider, 'dedup'] = 'false'::jsonb
        ORDER BY e.created_at, e.id
        LIMIT 1
        """,
        {"holder": holder, "community": community_id, "after": after, "hash": hash_},
    )
    return None if row is None else LaterWrite(*row)


def credentials_of(address: str) -> list[tuple[int, str, Any]]:
    """Every ceramic-cache row of the address, deleted ones too: (id, provider, credential)."""
    return [
        (row_id, provider, sql.json_value(stamp))
        for row_id, provider, stamp in sql.rows(
            "SELECT id, provider, stamp FROM ceramic_cache_ceramiccache WHERE address = %s ORDER BY id", [address]
        )
    ]


def check_reachable() -> None:
    """Connect (and fail with Django's OperationalError when the database cannot be reached)."""
    connection.ensure_connection()
