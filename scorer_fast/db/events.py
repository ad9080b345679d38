"""Append-mostly rows a request leaves behind: registry_event, the human-points tables and the API-key usage rows
(account_accountapikeyanalytics)."""

import json
from datetime import datetime
from typing import Any

from scorer_fast.db import sql
from scorer_fast.db.sql import Statement
from scorer_fast.domain.human_points import PointsAward

# --- registry_event ----------------------------------------------------------------------------------------------


def events_insert(
    address: str, community_id: int, documents: list[tuple[str, dict[str, Any] | str]], now: datetime
) -> list[Statement]:
    """(action, data) rows in one multi-row INSERT: their ids follow the list's order. `data` is a document, or
    its JSON text already."""
    if not documents:
        return []
    values = ", ".join(["(%s, %s, %s, %s::jsonb, %s)"] * len(documents))
    params: list[Any] = []
    for action, document in documents:
        params += [action, address, community_id, document if isinstance(document, str) else json.dumps(document), now]
    return [
        Statement(
            f"INSERT INTO registry_event (action, address, community_id, data, created_at) VALUES {values}", params
        )
    ]


# --- human points ------------------------------------------------------------------------------------------------


def qualified_user_add(address: str, community_id: int) -> Statement:
    return Statement(
        "INSERT INTO registry_humanpointscommunityqualifiedusers (address, community_id) VALUES (%s, %s) "
        "ON CONFLICT (address, community_id) DO NOTHING",
        [address, community_id],
    )


def qualified_communities_count(address: str) -> int:
    return sql.count("SELECT COUNT(*) FROM registry_humanpointscommunityqualifiedusers WHERE address = %s", [address])


def human_points_insert(address: str, awards: list[PointsAward], now: datetime) -> list[Statement]:
    """unique_human_points_constraint (address, action, chain_id, provider, tx_hash): repeats are ignored."""
    if not awards:
        return []
    values = ", ".join(["(%s, %s, %s, %s, 0, %s)"] * len(awards))
    params: list[Any] = []
    for award in awards:
        params += [address, award.action, now, award.tx_hash, award.provider]
    return [
        Statement(
            f"INSERT INTO registry_humanpoints (address, action, timestamp, tx_hash, chain_id, provider) "
            f"VALUES {values} ON CONFLICT (address, action, chain_id, provider, tx_hash) DO NOTHING",
            params,
        )
    ]


def human_points_action_exists(address: str, action: str) -> bool:
    return (
        sql.one("SELECT 1 FROM registry_humanpoints WHERE address = %s AND action = %s LIMIT 1", [address, action])
        is not None
    )


def human_points_action_count(action: str) -> int:
    return sql.count("SELECT COUNT(*) FROM registry_humanpoints WHERE action = %s", [action])


def address_lists_of(address: str, names: list[str]) -> set[str]:
    found = sql.rows(
        "SELECT l.name FROM account_addresslistmember m JOIN account_addresslist l ON l.id = m.list_id "
        "WHERE lower(m.address) = %s AND l.name = ANY(%s::text[])",
        [address, names],
    )
    return {name for (name,) in found}


def human_points_groups(address: str) -> list[tuple[str, int, int, int]]:
    """The original's points query: (action, chain_id, points, multiplier) per group, HIM excluded."""
    return sql.rows(
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
    return dict(sql.rows("SELECT action, points FROM registry_humanpointsconfig WHERE active ORDER BY action"))


# --- API-key usage rows ------------------------------------------------------------------------------------------


def api_key_analytics_insert(
    *,
    api_key_id: str,
    path: str,
    query_params: dict[str, Any],
    headers: dict[str, str],
    payload: Any,
    response: str | None,
    error: str | None,
    status_code: int,
    now: datetime,
) -> None:
    """account_accountapikeyanalytics; `response` is stored as a JSON string value (the body's text), `payload`
    as JSON (None → SQL NULL).

    Written after the request's own commit, in its own single-statement transaction, which commits without waiting
    for its WAL flush (`synchronous_commit` off for that transaction only): the row is visible at once, and only a
    database crash within a fraction of a second could lose it — a usage row, never a score, stamp or link."""
    sql.execute(
        """
        WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
        INSERT INTO account_accountapikeyanalytics
            (api_key_id, created_at, path, path_segments, query_params, headers, payload, response,
             response_skipped, error, status_code)
        SELECT %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, false, %s, %s
        FROM async_commit
        """,
        [
            api_key_id,
            now,
            path,
            json.dumps(path.split("/")[1:]),
            json.dumps(query_params),
            json.dumps(headers),
            None if payload is None else json.dumps(payload),
            None if response is None else json.dumps(response),
            error,
            status_code,
        ],
    )
