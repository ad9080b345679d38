"""AWS Lambda entry point: one function serves every route of the app (docs/deploy.md).

It takes Application Load Balancer target-group events (multi-value headers off or on) and API Gateway REST (v1)
and HTTP (v2) events, and runs them through `apig-wsgi` over the same WSGI application gunicorn serves, so status
codes, bodies, headers and rows are the HTTP server's. Django is set up once per execution environment, here at
import (Lambda's init phase); each invocation is one WSGI request, so Django's request signals reuse the database
connection across invocations (DB_CONN_MAX_AGE, health-checked on reuse) and drop it after an error.
"""

import base64
import binascii
import json
import logging
from http import HTTPStatus
from typing import Any

from apig_wsgi import make_lambda_handler
from django.db import connections
from django.urls import get_resolver

from scorer_fast.http import CORS_HEADERS, error_key
from scorer_fast.wsgi import application

logger = logging.getLogger(__name__)

# Resolve the URLconf now (routers, services, schemas), so the first invocation does not pay for it.
get_resolver().resolve("/health")

PLAIN_HEADERS = {"Content-Type": "application/json", **CORS_HEADERS}
_V2_HTTP_FIELDS = ("method", "sourceIp", "protocol")


class NotAnHttpEvent(ValueError):
    """The event is not an ALB or API Gateway request (a scheduled event, `{}`, a truncated event)."""


def _as_received(environ: dict[str, Any], start_response: Any) -> Any:
    """Give Django the headers the request carried, as gunicorn does. apig-wsgi adds `CONTENT_LENGTH` to a request
    without a body and an empty Cookie header to an API Gateway v2 event without cookies, and copies Content-Type
    and Content-Length into `HTTP_*` keys; the analytics row records the request's own headers."""
    environ.pop("HTTP_CONTENT_TYPE", None)
    environ.pop("HTTP_CONTENT_LENGTH", None)
    if environ.get("HTTP_COOKIE") == "":
        del environ["HTTP_COOKIE"]
    if environ.get("CONTENT_LENGTH") == "0" and "content-length" not in _event_header_names(
        environ["apig_wsgi.full_event"]
    ):
        del environ["CONTENT_LENGTH"]
    return application(environ, start_response)


_serve = make_lambda_handler(_as_received, binary_support=True)


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda handler: an HTTP event in, an ALB / API Gateway response dict out; never raises."""
    try:
        kind = event_kind(event)
    except NotAnHttpEvent as exc:
        logger.warning("not an HTTP event: %s", exc, extra={"event_keys": _keys(event)})
        return _plain_response(event, HTTPStatus.BAD_REQUEST, f"Not an HTTP event: {exc}")
    if event.get("isBase64Encoded") and not _is_base64(event.get("body") or ""):
        logger.warning("undecodable request body", extra={"event_kind": kind})
        return _plain_response(event, HTTPStatus.BAD_REQUEST, "The request body is not valid base64.")
    try:
        response = _serve(event, context)
    except Exception:
        # Django turns errors inside the app into responses; this is the adapter failing. Start the next
        # invocation on fresh connections.
        logger.exception("Lambda invocation failed", extra={"event_kind": kind})
        connections.close_all()
        return _plain_response(event, HTTPStatus.INTERNAL_SERVER_ERROR, "An error has occurred")
    if kind == "alb":
        response["statusDescription"] = _status_line(response["statusCode"])
    return response


def event_kind(event: Any) -> str:
    """Which HTTP event this is: "alb", "v1" or "v2". Raises NotAnHttpEvent for anything else, or for an event
    missing a field the adapter reads."""
    if not isinstance(event, dict):
        raise NotAnHttpEvent(f"expected a JSON object, got {type(event).__name__}")
    context = event.get("requestContext")
    if event.get("version") == "2.0":
        http = context.get("http") if isinstance(context, dict) else None
        _require(isinstance(http, dict) and all(isinstance(http.get(k), str) for k in _V2_HTTP_FIELDS), "http")
        _require(isinstance(event.get("rawPath"), str), "rawPath")
        _require(isinstance(event.get("rawQueryString"), str), "rawQueryString")
        _require(_is_str_map(event.get("headers")), "headers")
        cookies = event.get("cookies", [])
        _require(isinstance(cookies, list) and all(isinstance(c, str) for c in cookies), "cookies")
        kind = "v2"
    elif event.get("version", "1.0") == "1.0":
        _require(isinstance(event.get("httpMethod"), str), "httpMethod")
        _require(isinstance(event.get("path"), str), "path")
        multi = event.get("multiValueHeaders")
        _require(multi is None or _is_list_map(multi), "multiValueHeaders")
        _require(multi is not None or _is_str_map(event.get("headers") or {}), "headers")
        for field in ("queryStringParameters", "multiValueQueryStringParameters"):
            _require(isinstance(event.get(field) or {}, dict), field)
        kind = "alb" if isinstance(context, dict) and "elb" in context else "v1"
    else:
        raise NotAnHttpEvent(f"unknown event version {event.get('version')!r}")
    body = event.get("body")
    _require(body is None or (isinstance(body, str) and _encodable(body)), "body")
    return kind


def _encodable(text: str) -> bool:
    """A JSON event can carry a lone surrogate (`"\\udcff"`), which no UTF-8 body holds."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _is_base64(body: str) -> bool:
    try:
        base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _require(condition: bool, field: str) -> None:
    if not condition:
        raise NotAnHttpEvent(f"missing or malformed field {field!r}")


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _is_list_map(value: Any) -> bool:
    """Multi-value headers: each a non-empty list of strings (the adapter reads the last value)."""
    return isinstance(value, dict) and all(
        isinstance(v, list) and v and all(isinstance(item, str) for item in v) for v in value.values()
    )


def _event_header_names(event: dict[str, Any]) -> set[str]:
    headers = event.get("multiValueHeaders") or event.get("headers") or {}
    return {name.lower() for name in headers}


def _keys(event: Any) -> list[str]:
    """What the log line may show of a bad event: its top-level keys, never its values (they may hold secrets)."""
    return sorted(str(key) for key in event)[:20] if isinstance(event, dict) else []


def _path(event: Any) -> str:
    path = (event.get("path") or event.get("rawPath")) if isinstance(event, dict) else None
    return path if isinstance(path, str) else ""


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _plain_response(event: Any, status: HTTPStatus, message: str) -> dict[str, Any]:
    """An answer without the app, in the shape every caller accepts (ALB, API Gateway v1 and v2)."""
    response: dict[str, Any] = {
        "statusCode": int(status),
        "statusDescription": _status_line(status),
        "isBase64Encoded": False,
        "body": json.dumps({error_key(_path(event)): message}),
    }
    if isinstance(event, dict) and event.get("multiValueHeaders") is not None:
        response["multiValueHeaders"] = {name: [value] for name, value in PLAIN_HEADERS.items()}
    else:
        response["headers"] = dict(PLAIN_HEADERS)
    return response
