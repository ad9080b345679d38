"""The one NinjaAPI: routers mounted at the original paths, every exception handler, and /health."""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, DataError, connection
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Status
from ninja.errors import HttpError, ValidationError

from scorer_fast.errors import BadRequest, DatabaseBusy, DatabaseUnavailable, PayloadTooLarge, ScorerError
from scorer_fast.http import ADMIN_PREFIX, error_page, error_response
from scorer_fast.openapi import API_DESCRIPTION, partner_schema
from scorer_fast.routers import ceramic_cache, embed, internal, registry, v2
from scorer_fast.schemas import HealthOut

logger = logging.getLogger(__name__)


class ScorerApi(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None) -> Any:
        """/docs and /openapi.json only: what scorer_fast/openapi.py adds for readers."""
        return partner_schema(super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params))


api = ScorerApi(
    title="Passport scorer API",
    version="1.0.0",
    description=API_DESCRIPTION,
    # API_DOCS_ENABLED=off (public deployments) removes /docs and /openapi.json.
    docs_url="/docs" if settings.API_DOCS_ENABLED else None,
    openapi_url="/openapi.json" if settings.API_DOCS_ENABLED else None,
)
api.add_router("/v2/", v2.router)
api.add_router("/internal/embed/", embed.router)
api.add_router("/internal/", internal.router)
api.add_router("/ceramic-cache/", ceramic_cache.router)
api.add_router("/registry/", registry.router)

# PostgreSQL SQLSTATE classes that mean "no usable connection" (08: connection exception; 57P0x: shutdown).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P0")
# lock_timeout (lock_not_available) and statement_timeout (query_canceled): a bounded wait ran out.
_BUSY_SQLSTATES = frozenset({"55P03", "57014"})
UNSTORABLE_VALUE = "The request holds a value the database cannot store (such as a NUL character)."
NESTED_TOO_DEEPLY = "Request body is not valid JSON: it nests too deeply."


def _database_unreachable(exc: DatabaseError) -> bool:
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)


@api.exception_handler(ScorerError)
def _scorer_error(request: HttpRequest, exc: ScorerError) -> HttpResponse:
    return error_response(request.path, exc.status_code, exc.message)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors)
    return error_response(request.path, 400, problems or "Bad request.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(request.path, exc.status_code, str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request.path, 404, "Not Found")


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _scorer_error(request, PayloadTooLarge())


@api.exception_handler(RecursionError)
def _nested_too_deeply(request: HttpRequest, exc: RecursionError) -> HttpResponse:
    """Python's JSON parser recurses once per nesting level: `[[[[…` past the interpreter's limit is bad input."""
    logger.warning("request body nests too deeply for the JSON parser")
    return _scorer_error(request, BadRequest(NESTED_TOO_DEEPLY))


@api.exception_handler(DatabaseError)
def _database_error(request: HttpRequest, exc: DatabaseError) -> HttpResponse:
    if isinstance(exc, DataError):  # SQLSTATE class 22: a value from the request the database refuses
        return _scorer_error(request, BadRequest(UNSTORABLE_VALUE))
    if getattr(exc.__cause__, "sqlstate", None) in _BUSY_SQLSTATES:
        logger.warning("database wait timed out: %s", type(exc.__cause__).__name__)
        return _scorer_error(request, DatabaseBusy())
    if not _database_unreachable(exc):
        raise exc  # a real bug: Django logs it and answers 500
    logger.error("database unavailable: %s", type(exc.__cause__ or exc).__name__)
    connection.close_if_unusable_or_obsolete()
    return _scorer_error(request, DatabaseUnavailable())


@api.get("/health", response={200: HealthOut, 503: HealthOut}, tags=["health"])
def health(request: HttpRequest):
    """Whether the service and its database answer: 200 when both do, 503 when the database does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        connection.close_if_unusable_or_obsolete()
        return Status(503, {"status": "unavailable", "database": "unreachable"})
    return {"status": "ok", "database": "ok"}


# Django's handlers for errors outside ninja's views (unrouted paths, the admin): scorer_fast/urls.py.
def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 400, "Bad Request")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception or "") or "You do not have permission to see this page."
    return error_page(request, 403, message)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(ADMIN_PREFIX):
        return error_page(request, 404, "There is no such page or row. It may have been deleted, or the link is wrong.")
    return error_page(request, 404, "Not Found")


def server_error(request: HttpRequest) -> HttpResponse:
    return error_page(request, 500, "An error has occurred")


def page_exception(request: HttpRequest, exc: Exception) -> HttpResponse | None:
    """Outside ninja (the admin): a value from the request that the database refuses is bad input, as on the API."""
    if isinstance(exc, DataError):
        return error_page(request, 400, UNSTORABLE_VALUE)
    return None
