"""SQL of the partner-request side: signing nonces (POST /registry/submit-passport) and API-key usage rows.

Kept apart from db/queries.py (the scoring statements); same conventions: one function per statement,
parameterized, each naming the table it relies on.
"""

import json
from datetime import datetime
from typing import Any

from django.db import connection


def nonce_spend(nonce: str) -> bool:
    """account_nonce (unique nonce, stored lower-cased): mark an unused, unexpired nonce used. One conditional
    UPDATE, so of two concurrent requests exactly one gets the row (the second waits for the first's commit and
    then no longer matches `NOT was_used`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE account_nonce SET was_used = true "
            "WHERE nonce = lower(%s) AND NOT was_used AND (expires_on IS NULL OR expires_on > now()) "
            "RETURNING id",
            [nonce],
        )
        return cursor.fetchone() is not None


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
    as JSON (None → SQL NULL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO account_accountapikeyanalytics
                (api_key_id, created_at, path, path_segments, query_params, headers, payload, response,
                 response_skipped, error, status_code)
            VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, false, %s, %s)
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
