"""One function per SQL statement: explicit, parameterized, set-based. Every address passed in is lower case.

Raw SQL on Django's connection keeps the hot path lean and the statements visible; each function says which
table and constraint it relies on.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import OperationalError, connection

from scorer_fast.domain.computation import ScoreFields, ScorerConfig
from scorer_fast.domain.credentials import CachedStamp
from scorer_fast.domain.dedup import Link, LinkChange
from scorer_fast.domain.human_points import PointsAward

CERAMIC_TYPE_V1 = 1


def _rows(sql: str, params: tuple | list = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _one(sql: str, params: tuple | list = ()) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _count(sql: str, params: tuple | list = ()) -> int:
    row = _one(sql, params)
    return row[0] if row else 0


def _execute(sql: str, params: tuple | list = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _json_value(value: Any) -> Any:
    """Django's psycopg setup hands jsonb over as text; parse it the way the original did (floats, not Decimal)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _jsonb(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


# --- transactions and locks ----------------------------------------------------------------------------------


def transaction_timeouts(*, statement_ms: int, lock_ms: int) -> None:
    """Bound every statement and lock wait of the current transaction (SET LOCAL semantics: nothing leaks to the
    next client of a pooled connection, and no startup option a transaction pooler might refuse)."""
    _execute(
        "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
        [f"{statement_ms}ms", f"{lock_ms}ms"],
    )


def address_lock(address: str) -> None:
    """Serialize writers of one address until commit (transaction-scoped: safe behind a transaction pooler)."""
    _execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ["scorer_fast:address:" + address])


# --- communities and scorers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommunityRow:
    id: int
    account_id: int
    scorer_id: int
    rule: str
    human_points_program: bool


_COMMUNITY_COLUMNS = "id, account_id, scorer_id, rule, human_points_program"


def community_get(community_id: int) -> CommunityRow | None:
    """account_community by primary key (deleted_at is not filtered, as in the original)."""
    row = _one(f"SELECT {_COMMUNITY_COLUMNS} FROM account_community WHERE id = %s", [community_id])
    return CommunityRow(*row) if row else None


def community_of_account(scorer_ref: str, account_id: int) -> CommunityRow | None:
    """By external_scorer_id first, then by id, always owned by the key's account."""
    row = _one(
        f"SELECT {_COMMUNITY_COLUMNS} FROM account_community WHERE external_scorer_id = %s AND account_id = %s",
        [scorer_ref, account_id],
    )
    if row is None and scorer_ref.isdigit():
        row = _one(
            f"SELECT {_COMMUNITY_COLUMNS} FROM account_community WHERE id = %s AND account_id = %s",
            [int(scorer_ref), account_id],
        )
    return CommunityRow(*row) if row else None


def scorer_config_get(scorer_id: int) -> ScorerConfig | None:
    """The scorer type picks the child table; both are keyed by the scorer id (account_community.scorer_id)."""
    row = _one(
        """
        SELECT s.type,
               CASE WHEN s.type = 'WEIGHTED' THEN w.weights ELSE b.weights END,
               CASE WHEN s.type = 'WEIGHTED' THEN w.threshold ELSE b.threshold END
        FROM scorer_weighted_scorer s
        LEFT JOIN scorer_weighted_weightedscorer w ON s.type = 'WEIGHTED' AND w.scorer_ptr_id = s.id
        LEFT JOIN scorer_weighted_binaryweightedscorer b ON s.type = 'WEIGHTED_BINARY' AND b.scorer_ptr_id = s.id
        WHERE s.id = %s
        """,
        [scorer_id],
    )
    if row is None or row[2] is None:
        return None
    return ScorerConfig(scorer_type=row[0], weights=_json_value(row[1]) or {}, threshold=row[2])


def customization_weights(community_id: int) -> dict[str, str]:
    """Allow lists (`AllowList#<name>`) and custom credentials override weights, as strings."""
    rows = _rows(
        """
        SELECT 'AllowList#' || l.name, a.weight, 1 AS kind
        FROM account_customization c
        JOIN account_allowlist a ON a.customization_id = c.id
        JOIN account_addresslist l ON l.id = a.address_list_id
        WHERE c.scorer_id = %s
        UNION ALL
        SELECT r.provider_id, cc.weight, 2 AS kind
        FROM account_customization c
        JOIN account_customcredential cc ON cc.customization_id = c.id
        JOIN account_customcredentialruleset r ON r.id = cc.ruleset_id
        WHERE c.scorer_id = %s
        ORDER BY kind
        """,
        [community_id, community_id],
    )
    return {key: str(weight) for key, weight, _kind in rows}


def scorer_weights_of_community(community_id: int) -> dict[str, Any] | None:
    """The stored weights of a community's scorer (no customization merge), for the weights routes."""
    community = community_get(community_id)
    config = scorer_config_get(community.scorer_id) if community else None
    return config.weights if config else None


# --- passport, score, stamps -----------------------------------------------------------------------------------


def _upsert_id(sql: str, params: list[Any]) -> int:
    """Run an `INSERT … ON CONFLICT DO NOTHING RETURNING id … UNION ALL SELECT id` upsert until it yields the row.

    When another transaction (the original service, say) inserts the row and commits while this statement waits
    on it, neither half returns it: the insert did nothing and the select's snapshot predates that commit. Run
    again, the statement takes a new snapshot (READ COMMITTED) and finds the row, whoever wrote it.
    """
    for _ in range(_UPSERT_ATTEMPTS):
        row = _one(sql, params)
        if row is not None:
            return row[0]
    raise OperationalError(f"upsert found no row after {_UPSERT_ATTEMPTS} attempts")


_UPSERT_ATTEMPTS = 3


def passport_upsert(address: str, community_id: int) -> int:
    """registry_passport, unique (address, community_id); never updates an existing row. One round trip."""
    return _upsert_id(
        """
        WITH inserted AS (
            INSERT INTO registry_passport (address, community_id) VALUES (%s, %s)
            ON CONFLICT (address, community_id) DO NOTHING RETURNING id
        )
        SELECT id FROM inserted
        UNION ALL SELECT id FROM registry_passport WHERE address = %s AND community_id = %s
        LIMIT 1
        """,
        [address, community_id, address, community_id],
    )


def score_get_or_create(passport_id: int) -> int:
    """registry_score, unique passport_id; a new row starts as PROCESSING with everything else null."""
    return _upsert_id(
        """
        WITH inserted AS (
            INSERT INTO registry_score (passport_id, status) VALUES (%s, 'PROCESSING')
            ON CONFLICT (passport_id) DO NOTHING RETURNING id
        )
        SELECT id FROM inserted UNION ALL SELECT id FROM registry_score WHERE passport_id = %s
        LIMIT 1
        """,
        [passport_id, passport_id],
    )


def score_update(score_id: int, fields: ScoreFields) -> None:
    _execute(
        """
        UPDATE registry_score SET score = %s, last_score_timestamp = %s, status = %s, error = %s,
               evidence = %s::jsonb, stamp_scores = %s::jsonb, stamps = %s::jsonb, expiration_date = %s
        WHERE id = %s
        """,
        [
            fields.score,
            fields.last_score_timestamp,
            fields.status,
            fields.error,
            _jsonb(fields.evidence),
            _jsonb(fields.stamp_scores),
            _jsonb(fields.stamps),
            fields.expiration_date,
            score_id,
        ],
    )


def stored_score_get(address: str, community_id: int) -> ScoreFields | None:
    row = _one(
        """
        SELECT s.score, s.status, s.last_score_timestamp, s.error, s.evidence, s.stamp_scores, s.stamps,
               s.expiration_date
        FROM registry_score s JOIN registry_passport p ON p.id = s.passport_id
        WHERE p.address = %s AND p.community_id = %s
        """,
        [address, community_id],
    )
    if row is None:
        return None
    score, status, last, error, evidence, stamp_scores, stamps, expiration = row
    return ScoreFields(
        score, status, last, error, _json_value(evidence), _json_value(stamp_scores), _json_value(stamps), expiration
    )


def stamps_replace(passport_id: int, kept: list[CachedStamp]) -> None:
    """registry_stamp holds exactly the kept stamps of the latest scoring. When the stored rows already say
    the same (the usual rescoring), they are left alone instead of being deleted and written again."""
    stored = _rows("SELECT provider, credential FROM registry_stamp WHERE passport_id = %s ORDER BY id", [passport_id])
    if [(provider, _json_value(credential)) for provider, credential in stored] == [
        (stamp.provider, stamp.credential) for stamp in kept
    ]:
        return
    _execute("DELETE FROM registry_stamp WHERE passport_id = %s", [passport_id])
    if kept:
        values = ", ".join(["(%s, %s, %s::jsonb)"] * len(kept))
        params: list[Any] = []
        for stamp in kept:
            params += [passport_id, stamp.provider, json.dumps(stamp.credential)]
        _execute(f"INSERT INTO registry_stamp (passport_id, provider, credential) VALUES {values}", params)


def events_insert(action: str, address: str, community_id: int, documents: list[dict[str, Any]], now: datetime) -> None:
    if not documents:
        return
    values = ", ".join(["(%s, %s, %s, %s::jsonb, %s)"] * len(documents))
    params: list[Any] = []
    for document in documents:
        params += [action, address, community_id, json.dumps(document), now]
    _execute(f"INSERT INTO registry_event (action, address, community_id, data, created_at) VALUES {values}", params)


# --- hash links (LIFO) -----------------------------------------------------------------------------------------


def hash_links_get(hashes: list[str], community_id: int) -> dict[str, Link]:
    rows = _rows(
        "SELECT hash, address, expires_at FROM registry_hashscorerlink "
        "WHERE hash = ANY(%s::text[]) AND community_id = %s",
        [hashes, community_id],
    )
    return {hash_: Link(address, expires_at) for hash_, address, expires_at in rows}


def hash_links_insert(changes: list[LinkChange], community_id: int) -> None:
    """A concurrent claim of the same (hash, community) raises IntegrityError: the caller re-plans."""
    if not changes:
        return
    values = ", ".join(["(%s, %s, %s, %s)"] * len(changes))
    params: list[Any] = []
    for change in changes:
        params += [change.hash, change.address, change.expires_at, community_id]
    _execute(f"INSERT INTO registry_hashscorerlink (hash, address, expires_at, community_id) VALUES {values}", params)


def hash_link_update(change: LinkChange, community_id: int) -> bool:
    """Conditional on the exact holder and expiry we planned against; False means another writer (this service
    or the original) changed the link meanwhile and the caller re-plans."""
    assert change.expected is not None
    return (
        _execute(
            "UPDATE registry_hashscorerlink SET address = %s, expires_at = %s "
            "WHERE hash = %s AND community_id = %s AND address = %s AND expires_at = %s",
            [
                change.address,
                change.expires_at,
                change.hash,
                community_id,
                change.expected.address,
                change.expected.expires_at,
            ],
        )
        == 1
    )


# --- ceramic cache -----------------------------------------------------------------------------------------------


def ceramic_stamps_for_scoring(address: str) -> list[CachedStamp]:
    """Live, unrevoked rows (any type); per provider the latest updated_at wins."""
    rows = _rows(
        """
        SELECT DISTINCT ON (cc.provider) cc.provider, cc.stamp
        FROM ceramic_cache_ceramiccache cc
        LEFT JOIN ceramic_cache_revocation r ON r.ceramic_cache_id = cc.id
        WHERE cc.address = %s AND cc.deleted_at IS NULL AND r.id IS NULL
        ORDER BY cc.provider, cc.updated_at DESC, cc.id
        """,
        [address],
    )
    return [CachedStamp(provider, _json_value(stamp)) for provider, stamp in rows]


def ceramic_stamps_live(address: str) -> list[tuple[int, str, str, Any]]:
    """The stamp list the routes return: V1, live, unrevoked (uses idx_cc_addr_id_not_deleted)."""
    rows = _rows(
        """
        SELECT cc.id, cc.address, cc.provider, cc.stamp
        FROM ceramic_cache_ceramiccache cc
        LEFT JOIN ceramic_cache_revocation r ON r.ceramic_cache_id = cc.id
        WHERE cc.address = %s AND cc.type = %s AND cc.deleted_at IS NULL AND r.id IS NULL
        ORDER BY cc.id
        """,
        [address, CERAMIC_TYPE_V1],
    )
    return [(row_id, addr, provider, _json_value(stamp)) for row_id, addr, provider, stamp in rows]


def ceramic_soft_delete(address: str, providers: list[str], now: datetime, *, v1_only: bool) -> int:
    """Soft delete live rows (revoked ones too). POST touches V1 rows only; PATCH and DELETE any type."""
    return _execute(
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


def ceramic_insert(
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
            json.dumps(row.stamp),
            now,
            now,
            row.expiration_date,
            row.issuance_date,
            row.proof_value,
            source_app,
            source_scorer_id,
        ]
    _execute(
        f"""
        INSERT INTO ceramic_cache_ceramiccache
            (type, address, provider, stamp, created_at, updated_at, deleted_at, compose_db_save_status,
             compose_db_stream_id, expiration_date, issuance_date, proof_value, source_app, source_scorer_id)
        VALUES {values}
        """,
        params,
    )


# --- API keys ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKeyRow:
    id: str
    account_id: int
    hashed_key: str
    hashed_key_sha256: str | None
    embed_rate_limit: str | None
    rate_limit: str | None


def usable_api_key_by_prefix(prefix: str) -> ApiKeyRow | None:
    """account_accountapikey, unique prefix; revoked keys are never usable here (decisions 5 and 6)."""
    row = _one(
        "SELECT id, account_id, hashed_key, hashed_key_sha256, embed_rate_limit, rate_limit "
        "FROM account_accountapikey WHERE prefix = %s AND NOT revoked",
        [prefix],
    )
    return ApiKeyRow(*row) if row else None


def api_key_store_sha256(key_id: str, hashed_key_sha256: str) -> None:
    _execute("UPDATE account_accountapikey SET hashed_key_sha256 = %s WHERE id = %s", [hashed_key_sha256, key_id])


# --- human points ------------------------------------------------------------------------------------------------


def qualified_user_add(address: str, community_id: int) -> None:
    _execute(
        "INSERT INTO registry_humanpointscommunityqualifiedusers (address, community_id) VALUES (%s, %s) "
        "ON CONFLICT (address, community_id) DO NOTHING",
        [address, community_id],
    )


def qualified_communities_count(address: str) -> int:
    return _count("SELECT COUNT(*) FROM registry_humanpointscommunityqualifiedusers WHERE address = %s", [address])


def human_key_providers(address: str) -> set[str]:
    rows = _rows("SELECT provider FROM registry_humanpoints WHERE address = %s AND action = 'HKY'", [address])
    return {provider for (provider,) in rows}


def human_points_insert(address: str, awards: list[PointsAward], now: datetime) -> None:
    """unique_human_points_constraint (address, action, chain_id, provider, tx_hash): repeats are ignored."""
    if not awards:
        return
    values = ", ".join(["(%s, %s, %s, %s, 0, %s)"] * len(awards))
    params: list[Any] = []
    for award in awards:
        params += [address, award.action, now, award.tx_hash, award.provider]
    _execute(
        f"INSERT INTO registry_humanpoints (address, action, timestamp, tx_hash, chain_id, provider) VALUES {values} "
        "ON CONFLICT (address, action, chain_id, provider, tx_hash) DO NOTHING",
        params,
    )


def human_points_action_exists(address: str, action: str) -> bool:
    return (
        _one("SELECT 1 FROM registry_humanpoints WHERE address = %s AND action = %s LIMIT 1", [address, action])
        is not None
    )


def human_points_action_count(action: str) -> int:
    return _count("SELECT COUNT(*) FROM registry_humanpoints WHERE action = %s", [action])


def address_lists_of(address: str, names: list[str]) -> set[str]:
    rows = _rows(
        "SELECT l.name FROM account_addresslistmember m JOIN account_addresslist l ON l.id = m.list_id "
        "WHERE lower(m.address) = %s AND l.name = ANY(%s::text[])",
        [address, names],
    )
    return {name for (name,) in rows}


def human_points_groups(address: str) -> list[tuple[str, int, int, int]]:
    """The original's points query: (action, chain_id, points, multiplier) per group, HIM excluded."""
    return _rows(
        """
        SELECT hp.action, hp.chain_id, SUM(hpc.points)::int, MAX(COALESCE(hpm.multiplier, 1))::int
        FROM registry_humanpoints hp
        JOIN registry_humanpointsconfig hpc ON hp.action = hpc.action AND hpc.active
        LEFT JOIN registry_humanpointsmultiplier hpm ON hp.address = hpm.address
        WHERE hp.address = %s AND hp.action != 'HIM'
        GROUP BY hp.address, hp.action, hp.chain_id
        ORDER BY hp.action, hp.chain_id
        """,
        [address],
    )


def active_points_config() -> dict[str, int]:
    return dict(_rows("SELECT action, points FROM registry_humanpointsconfig WHERE active ORDER BY action"))
