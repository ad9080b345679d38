"""API-key usage rows (decision 18), written only when FF_API_ANALYTICS is on.

A partner route runs its operation through `with_api_usage`, which notes the key, the parsed request body and the
error; `record_api_usage` writes the row once the response exists (scorer_fast/middleware.py), so the row carries
the status and body actually sent (a 503 stays 503), and a refused request still leaves its row after its own
transaction has rolled back.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from scorer_fast.db import events
from scorer_fast.errors import RateLimited, ScorerError
from scorer_fast.services.api_keys import ApiKeyPrincipal

logger = logging.getLogger(__name__)
_SECRET_HEADERS = {"x-api-key", "authorization", "cookie"}
_REQUEST_ATTRIBUTE = "scorer_fast_api_usage"
T = TypeVar("T")


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
    try:
        events.api_key_analytics_insert(
            api_key_id=usage.principal.key_id,
            path=_storable(request.path),
            query_params=_storable({key: request.GET.getlist(key) for key in request.GET}),
            headers=_masked_headers(request),
            payload=_storable(usage.payload),
            response=response.content.decode("utf-8", errors="replace"),
            error=_storable(usage.error),
            status_code=response.status_code,
            now=datetime.now(UTC),
        )
    except DatabaseError:
        logger.warning("could not record API usage", exc_info=True)


def _storable(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold NUL characters; a request that carried one still gets its row."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


def _masked_headers(request: HttpRequest) -> dict[str, str]:
    return {name: ("***" if name.lower() in _SECRET_HEADERS else value) for name, value in request.headers.items()}
