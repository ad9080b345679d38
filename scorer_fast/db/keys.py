"""API keys, signing nonces, communities and their scorer configuration (account_* and scorer_weighted_* tables).

A community is read together with everything scoring needs from its scorer (type, weights, threshold and the
customization's weight overrides) in one statement, before any transaction or lock: none of it needs the lock.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from scorer_fast.db import ceramic, sql
from scorer_fast.domain.computation import ScorerConfig
from scorer_fast.domain.credentials import CachedStamp

# --- API keys and nonces ---------------------------------------------------------------------------------------


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
    return sql.fetch_one(
        ApiKeyRow,
        "SELECT id, account_id, hashed_key, hashed_key_sha256, embed_rate_limit, rate_limit "
        "FROM account_accountapikey WHERE prefix = %s AND NOT revoked",
        [prefix],
    )


def api_key_store_sha256(key_id: str, hashed_key_sha256: str) -> None:
    sql.execute("UPDATE account_accountapikey SET hashed_key_sha256 = %s WHERE id = %s", [hashed_key_sha256, key_id])


def nonce_spend(nonce: str) -> bool:
    """account_nonce (unique nonce, stored lower-cased): mark an unused, unexpired nonce used. One conditional
    UPDATE, so of two concurrent requests exactly one gets the row (the second waits for the first's commit and
    then no longer matches `NOT was_used`)."""
    return (
        sql.one(
            "UPDATE account_nonce SET was_used = true "
            "WHERE nonce = lower(%s) AND NOT was_used AND (expires_on IS NULL OR expires_on > now()) "
            "RETURNING id",
            [nonce],
        )
        is not None
    )


# --- communities and their scorers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommunityRow:
    """account_community with its scorer's configuration. `config` is None when the scorer or its weighted child
    row is missing (scoring then fails with "Unknown scorer type", as in the original)."""

    id: int
    account_id: int
    scorer_id: int
    rule: str
    human_points_program: bool
    config: ScorerConfig | None = None
    # account_customization overrides: `AllowList#<name>` and custom credential providers → weight (as strings)
    overrides: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _CommunityRecord:
    id: int
    account_id: int
    scorer_id: int
    rule: str
    human_points_program: bool
    scorer_type: str | None
    weights: Any
    threshold: Decimal | None
    overrides: list[list[str]]
    stamps: list[list[str]] | None


# The scorer type picks the child table; both are keyed by the scorer id (account_community.scorer_id).
# Overrides in the original's order: allow lists first, then custom credentials (the later one wins a clash).
_COMMUNITY_SETUP = """
    SELECT c.id, c.account_id, c.scorer_id, c.rule, c.human_points_program,
           s.type AS scorer_type,
           CASE WHEN s.type = 'WEIGHTED' THEN w.weights ELSE b.weights END AS weights,
           CASE WHEN s.type = 'WEIGHTED' THEN w.threshold ELSE b.threshold END AS threshold,
           ARRAY(
               SELECT ARRAY[o.key, o.weight::text] FROM (
                   SELECT 'AllowList#' || l.name AS key, a.weight, 1 AS kind
                   FROM account_customization cu
                   JOIN account_allowlist a ON a.customization_id = cu.id
                   JOIN account_addresslist l ON l.id = a.address_list_id
                   WHERE cu.scorer_id = c.id
                   UNION ALL
                   SELECT r.provider_id, cc.weight, 2 AS kind
                   FROM account_customization cu
                   JOIN account_customcredential cc ON cc.customization_id = cu.id
                   JOIN account_customcredentialruleset r ON r.id = cc.ruleset_id
                   WHERE cu.scorer_id = c.id
                   ORDER BY kind
               ) o
           ) AS overrides,
           {stamps} AS stamps
    FROM account_community c
    LEFT JOIN scorer_weighted_scorer s ON s.id = c.scorer_id
    LEFT JOIN scorer_weighted_weightedscorer w ON s.type = 'WEIGHTED' AND w.scorer_ptr_id = s.id
    LEFT JOIN scorer_weighted_binaryweightedscorer b ON s.type = 'WEIGHTED_BINARY' AND b.scorer_ptr_id = s.id
"""


def _community(record: _CommunityRecord | None) -> CommunityRow | None:
    if record is None:
        return None
    config = None
    if record.scorer_type is not None and record.threshold is not None:
        config = ScorerConfig(record.scorer_type, sql.json_value(record.weights) or {}, record.threshold)
    return CommunityRow(
        id=record.id,
        account_id=record.account_id,
        scorer_id=record.scorer_id,
        rule=record.rule,
        human_points_program=record.human_points_program,
        config=config,
        overrides={key: weight for key, weight in record.overrides},
    )


def _setup_sql(where: str, with_stamps: bool) -> str:
    stamps = ceramic.SCORING_STAMPS_ARRAY if with_stamps else "NULL"
    return _COMMUNITY_SETUP.format(stamps=stamps) + where


@dataclass(frozen=True)
class CommunityFlags:
    """What reading a stored score needs of a community: no scorer setup."""

    id: int
    human_points_program: bool


def community_flags(community_id: int) -> CommunityFlags | None:
    return sql.fetch_one(
        CommunityFlags, "SELECT id, human_points_program FROM account_community WHERE id = %s", [community_id]
    )


def community_get(community_id: int) -> CommunityRow | None:
    """account_community by primary key (deleted_at is not filtered, as in the original)."""
    return _community(sql.fetch_one(_CommunityRecord, _setup_sql("WHERE c.id = %(id)s", False), {"id": community_id}))


def community_and_stamps(community_id: int, stamps_of: str | None) -> tuple[CommunityRow | None, list[CachedStamp]]:
    """`community_get`, and (when `stamps_of` is an address) that address's live stamps, in one statement."""
    record = sql.fetch_one(
        _CommunityRecord,
        _setup_sql("WHERE c.id = %(id)s", stamps_of is not None),
        {"id": community_id, "address": stamps_of},
    )
    return _community(record), _stamps(record)


def _stamps(record: _CommunityRecord | None) -> list[CachedStamp]:
    return ceramic.cached_stamps(record.stamps) if record is not None and record.stamps is not None else []


def community_of_account(
    scorer_ref: str, account_id: int, *, stamps_of: str | None = None
) -> tuple[CommunityRow | None, list[CachedStamp]]:
    """By external_scorer_id first, then by id, always owned by the key's account. With `stamps_of`, the same
    statement also reads that address's live stamps for scoring (`ceramic.SCORING_STAMPS`), so a request
    learns everything it checks before the lock in one round trip."""
    record = sql.fetch_one(
        _CommunityRecord,
        _setup_sql(
            "WHERE c.account_id = %(account)s AND (c.external_scorer_id = %(ref)s OR c.id = %(id)s) "
            "ORDER BY c.external_scorer_id = %(ref)s DESC NULLS LAST LIMIT 1",
            stamps_of is not None,
        ),
        {"account": account_id, "ref": scorer_ref, "id": _as_id(scorer_ref), "address": stamps_of},
    )
    return _community(record), _stamps(record)


def _as_id(scorer_ref: str) -> int | None:
    try:
        # ASCII only: str.isdigit() also accepts "²" (which int() refuses) and "١" (which int() reads as 1).
        return int(scorer_ref) if scorer_ref.isascii() and scorer_ref.isdigit() else None
    except ValueError:
        return None


def scorer_config_get(scorer_id: int) -> ScorerConfig | None:
    row = sql.one(
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
    return ScorerConfig(scorer_type=row[0], weights=sql.json_value(row[1]) or {}, threshold=row[2])


def scorer_weights_of_community(community_id: int) -> dict[str, Any] | None:
    """The stored weights of a community's scorer (no customization merge), for the weights routes."""
    community = community_get(community_id)
    return community.config.weights if community and community.config else None
