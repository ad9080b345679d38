"""Per-request context: request id, server span, access log line, CORS, body-size limit, rollout header."""

import hmac
import logging
import re
import time
import uuid

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from opentelemetry.trace import SpanKind

from scorer_fast.http import CORS_HEADERS, error_response
from scorer_fast.observability import request_id_var, spans_recorded, tracer
from scorer_fast.services.analytics import record_api_usage

logger = logging.getLogger("scorer_fast.access")
_API_PREFIXES = ("/v2/", "/internal/", "/ceramic-cache/", "/registry/")
_INTERNAL_SCORE_PREFIX = "/internal/score/"
# A caller's request id is echoed in a response header and every log line: visible ASCII only (a CR or LF cannot
# go into a header: Django raises, a 500) and bounded; anything else gets a fresh id.
_CALLER_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,200}")


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _caller_request_id(request) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self._respond_in_span(request) if spans_recorded() else self._respond(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        logger.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "route": getattr(request.resolver_match, "route", None) or request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Exceptions outside ninja's views (the admin's pages): the ones that are the request's fault."""
        from scorer_fast.api import page_exception  # the API module loads the routers; middleware loads first

        return page_exception(request, exception)

    def _respond_in_span(self, request: HttpRequest) -> HttpResponse:
        with tracer.start_as_current_span(f"{request.method} {request.path}", kind=SpanKind.SERVER) as span:
            response = self._respond(request)
            route = getattr(request.resolver_match, "route", None)
            if route:
                span.update_name(f"{request.method} /{route}")
            span.set_attribute("http.status_code", response.status_code)
        return response

    def _respond(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if not path.startswith(_API_PREFIXES):
            return self.get_response(request)
        if request.method == "OPTIONS":
            response = HttpResponse(status=200)
        elif path.startswith("/ceramic-cache/") and not self._rollout_allows(request):
            response = error_response(path, 404, "Not Found")
        elif path.startswith("/internal/") and not self._internal_token_allows(request):
            response = error_response(path, 401, "Unauthorized")
        elif _content_length(request) > settings.MAX_REQUEST_BODY_BYTES:
            response = error_response(path, 413, f"Request body exceeds {settings.MAX_REQUEST_BODY_BYTES} bytes.")
        else:
            response = self.get_response(request)
        for header, value in CORS_HEADERS.items():
            response[header] = value
        return response

    @staticmethod
    def _internal_token_allows(request: HttpRequest) -> bool:
        """`GET /internal/score/v2/...` always needs `Authorization: <CGRANTS_API_TOKEN>`, as in the original; the
        other /internal routes only with REQUIRE_INTERNAL_API_TOKEN (they sit behind a private load balancer)."""
        if not settings.REQUIRE_INTERNAL_API_TOKEN and not request.path.startswith(_INTERNAL_SCORE_PREFIX):
            return True
        expected = settings.CGRANTS_API_TOKEN.encode()
        return bool(expected) and hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected)

    @staticmethod
    def _rollout_allows(request: HttpRequest) -> bool:
        header = settings.ROLLOUT_ROUTING_HEADER
        return not header or request.headers.get(header, "").lower() == "true"


def _caller_request_id(request: HttpRequest) -> str | None:
    value = request.headers.get("X-Request-ID", "")
    return value if _CALLER_REQUEST_ID.fullmatch(value) else None


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # Django then enforces DATA_UPLOAD_MAX_MEMORY_SIZE while reading the body


class ApiUsageMiddleware:
    """Writes a partner request's API-key usage row once its response exists (scorer_fast/services/analytics.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        record_api_usage(request, response)
        return response


# The admin's session, user and messages: nothing an API route reads or answers with (a route that never touches
# `request.session` or `request.user` gets no cookie or header from them), so API paths skip their request and
# response hooks, work every request would otherwise pay for. Subclasses, so Django's admin checks still find them.
class _OutsideTheApiOnly(MiddlewareMixin):
    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(_API_PREFIXES):
            return self.get_response(request)
        return super().__call__(request)


class PagesSessionMiddleware(_OutsideTheApiOnly, SessionMiddleware):
    pass


class PagesAuthenticationMiddleware(_OutsideTheApiOnly, AuthenticationMiddleware):
    pass


class PagesMessageMiddleware(_OutsideTheApiOnly, MessageMiddleware):
    pass
