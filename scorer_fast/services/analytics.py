"""API-key usage rows (decision 18), written only when FF_API_ANALYTICS is on.

A partner route runs its operation through `with_api_usage`, which notes the key, the parsed request body and the
error; `record_api_usage` writes the row once the response exists (scorer_fast/middleware.py), so the row carries
the status and body actually sent (a 503 stays 503), and a refused request still leaves its row after its own
transaction has rolled back.
"""

import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse

from scorer_fast.db import events
from scorer_fast.errors import RateLimited, ScorerError
from scorer_fast.services.api_keys import ApiKeyPrincipal

logger = logging.getLogger(__name__)
_SECRET_HEADERS = {"x-api-key", "authorization", "cookie"}
_REQUEST_ATTRIBUTE = "scorer_fast_api_usage"
_UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates: no text or jsonb holds them
T = TypeVar("T")
# An insert refused for size: 54000 (an index row over btree's ~2.7 kB limit), 22001 (a value over its varchar).
_TOO_LARGE_SQLSTATES = frozenset({"54000", "22001"})
_INDEXED_VALUE_BYTES = 1000  # well under btree's limit, whatever jsonb's binary form and compression make of it
_PATH_CHARACTERS = 1000  # account_accountapikeyanalytics.path is varchar(1000)
TOO_LARGE_TO_STORE = {"scorer_fast": "value too large to store"}


@dataclass
class ApiUsage:
    principal: ApiKeyPrincipal
    payload: Any = field(default_factory=dict)  # the parsed body; {} without one, None when it could not be parsed
    error: str | None = None


def with_api_usage(request: HttpRequest, principal: ApiKeyPrincipal, operation: Callable[[ApiUsage], T]) -> T:
    """Run `operation` (which may record the parsed body on the usage) and note its error for the usage row."""
    usage = ApiUsage(principal)
    if settings.FF_API_ANALYTICS:
        setattr(request, _REQUEST_ATTRIBUTE, usage)
    try:
        return operation(usage)
    except RateLimited:
        usage.error, usage.payload = "", None  # the original's 429 row: empty error, body never parsed
        raise
    except ScorerError as exc:
        usage.error = exc.message
        raise
    except Exception as exc:
        usage.error = str(exc)
        raise


def record_api_usage(request: HttpRequest, response: HttpResponse) -> None:
    """Write the usage row of a request that went through `with_api_usage`; failures are logged, never raised."""
    usage: ApiUsage | None = getattr(request, _REQUEST_ATTRIBUTE, None)
    if usage is None:
        return
    row = {
        "api_key_id": usage.principal.key_id,
        "path": _storable(request.path),
        "query_params": _storable({key: request.GET.getlist(key) for key in request.GET}),
        "headers": _storable(masked_headers(request.headers)),
        "payload": _storable(usage.payload),
        "response": response.content.decode("utf-8", errors="replace"),
        "error": _storable(usage.error),
        "status_code": response.status_code,
        "now": datetime.now(UTC),
    }
    try:
        try:
            _insert_usage_row(row)
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in _TOO_LARGE_SQLSTATES:
                raise
            _insert_usage_row(_within_column_limits(row))  # every request keeps its row, a hostile one too
    except (DatabaseError, RecursionError) as exc:  # RecursionError: a payload nested too deeply to serialize
        # No traceback: PostgreSQL's message can quote the statement's values, the key's hashed id among them.
        logger.warning(
            "could not record API usage: %s (SQLSTATE %s)",
            type(exc).__name__,
            getattr(exc.__cause__, "sqlstate", None),
        )


def _insert_usage_row(row: dict[str, Any]) -> None:
    """In a savepoint when inside a transaction (tests), so that a refused insert can be retried; requests run
    in autocommit, where a failed statement leaves nothing to roll back and no savepoint costs a round trip."""
    if connection.in_atomic_block:
        with transaction.atomic():
            events.api_key_analytics_insert(**row)
    else:
        events.api_key_analytics_insert(**row)


def _within_column_limits(row: dict[str, Any]) -> dict[str, Any]:
    """The production table indexes `payload`, `query_params` and `error` with btree, whose entries cannot exceed
    ~2.7 kB, and `path` is varchar(1000): larger values become a marker (JSON) or are cut (text)."""

    def small(value: Any) -> Any:
        return value if len(json.dumps(value)) <= _INDEXED_VALUE_BYTES else TOO_LARGE_TO_STORE

    return {
        **row,
        "path": row["path"][:_PATH_CHARACTERS],
        "query_params": small(row["query_params"]),
        "payload": small(row["payload"]),
        "error": row["error"][:_INDEXED_VALUE_BYTES] if row["error"] else row["error"],
    }


def _storable(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold NUL characters, lone surrogates or NaN / Infinity, all of which
    Python's JSON parser accepts: a request that carried one still gets its row (NaN kept as the text "NaN").
    Walked with a work list, not recursion: a body nested hundreds deep still parses, and must not end in a
    RecursionError once the response exists."""
    root = [value]
    pending: list[tuple[Any, Any]] = [(root, 0)]
    while pending:
        container, index = pending.pop()
        item = container[index]
        if isinstance(item, str):
            container[index] = _UNSTORABLE_CHARACTERS.sub("\ufffd", item)
        elif isinstance(item, float) and not math.isfinite(item):
            container[index] = json.dumps(item)
        elif isinstance(item, list):
            items = list(item)
            container[index] = items
            pending.extend((items, position) for position in range(len(items)))
        elif isinstance(item, dict):
            fields = {_UNSTORABLE_CHARACTERS.sub("\ufffd", str(key)): v for key, v in item.items()}
            container[index] = fields
            pending.extend((fields, key) for key in fields)
    return root[0]


def masked_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers as recorded and shown: the API key, `Authorization` and cookies replaced by `***`."""
    return {name: ("***" if name.lower() in _SECRET_HEADERS else value) for name, value in headers.items()}
