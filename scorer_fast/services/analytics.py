"""API-key usage rows (§3.1 analytics), written only when FF_API_ANALYTICS is on.

The row is written after the request's own transaction has ended, so a refused request still leaves its row.
"""

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest

from scorer_fast.db import queries
from scorer_fast.errors import ScorerError
from scorer_fast.services.api_keys import ApiKeyPrincipal

logger = logging.getLogger(__name__)
_SECRET_HEADERS = {"x-api-key", "authorization", "cookie"}


def _masked_headers(request: HttpRequest) -> dict[str, str]:
    return {name: ("***" if name.lower() in _SECRET_HEADERS else value) for name, value in request.headers.items()}


def with_api_usage(request: HttpRequest, principal: ApiKeyPrincipal, operation: Callable[[], str]) -> str:
    """Run `operation`, which returns the response's JSON text, and record its outcome (status, error, response
    body) for the key."""
    if not settings.FF_API_ANALYTICS:
        return operation()
    status, error, body = 500, None, None
    try:
        body = operation()
        status = 200
        return body
    except ScorerError as exc:
        status, error = exc.status_code, exc.message
        body = json.dumps({"error": exc.message})
        raise
    except Exception as exc:
        error = str(exc)
        raise
    finally:
        try:
            queries.api_key_analytics_insert(
                api_key_id=principal.key_id,
                path=request.path,
                query_params={key: request.GET.getlist(key) for key in request.GET},
                headers=_masked_headers(request),
                response=body,
                error=error,
                status_code=status,
                now=datetime.now(UTC),
            )
        except DatabaseError:
            logger.warning("could not record API usage", exc_info=True)
