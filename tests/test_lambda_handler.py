"""scorer_fast.lambda_handler in process: every route, as ALB and API Gateway events, answers what the HTTP server
answers for the same request (status, body, headers) and writes the same rows, the analytics row included, and the
same rate-limit counters in a real Redis (the embedded test server), a 429 included."""

import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cache
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import redis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, connection, transaction
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import path

from scorer_fast import lambda_handler
from scorer_fast.models import AccountAPIKey
from tests import factories, pooler
from tests.conftest import scorer_tables
from tests.credentials import signed_stamp
from tests.helpers import original_counter_key
from tests.lambda_events import SHAPES, HttpRequest, event, response_body, response_headers
from tests.tokens import RSA_PUBLIC_PEM, rs256_token

A, B = "0x" + "a" * 40, "0x" + "b" * 40
WEIGHTS = {"Google": 15, "Ens": 15, "Github": 15}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:?\d\d|Z)?")


@cache
def stamp(address: str, provider: str) -> dict:
    return signed_stamp(address, provider)


LIMITED_RATE = (1, 3600)  # "1/h": the limited key's counter is primed to 1 before each run, so its next call is 429


@pytest.fixture
def world(settings, rate_limits_on):
    settings.FF_API_ANALYTICS = True
    settings.SIWE_JWT_PUBLIC_KEY = RSA_PUBLIC_PEM
    owner = factories.account()
    community = factories.community(owner=owner, weights=WEIGHTS, threshold="20")
    settings.CERAMIC_CACHE_SCORER_ID = community.id
    for provider in ("Google", "Ens"):
        factories.cache_stamp(A, stamp(A, provider))
    limited = factories.api_key(owner)
    AccountAPIKey.objects.filter(prefix=limited.split(".")[0]).update(rate_limit="1/h")
    return {
        "scorer": community.id,
        "key": factories.api_key(owner),
        "limited": limited,
        "jwt_a": rs256_token(A),
        "jwt_b": rs256_token(B),
    }


def _json(value) -> bytes:
    return json.dumps(value).encode()


def routes(w: dict) -> dict[str, HttpRequest]:
    """One request per route (and a few error paths), with the request features the handler must carry over."""
    scorer, key = w["scorer"], w["key"]
    accept = [("Accept", "application/json"), ("Accept", "text/plain")]  # a repeated header
    bearer_b = [("Authorization", f"Bearer {w['jwt_b']}")]
    bulk = [{"provider": p, "stamp": stamp(B, p)} for p in ("Google", "Github")]
    embed = {"scorer_id": scorer, "stamps": [stamp(B, "Github")]}
    submit = _json({"address": A, "scorer_id": scorer})
    requests = {
        "v2-score": HttpRequest(
            "GET", f"/v2/stamps/{scorer}/score/{A}", [("trace", "1"), ("trace", "2 b")], [("x-api-key", key), *accept]
        ),
        "v2-score-bad-key": HttpRequest("GET", f"/v2/stamps/{scorer}/score/{A}", [], [("x-api-key", "nope.x")]),
        "v2-score-rate-limited": HttpRequest(
            "GET", f"/v2/stamps/{scorer}/score/{A}", [], [("X-API-Key", w["limited"])]
        ),
        "submit-passport": HttpRequest("POST", "/registry/submit-passport", [], [("x-api-key", key)], submit),
        "submit-passport-base64": HttpRequest(
            "POST", "/registry/submit-passport", [], [("X-API-Key", key)], submit, base64_body=True
        ),
        "submit-passport-no-scorer": HttpRequest(
            "POST", "/registry/submit-passport", [], [("X-API-Key", key)], _json({"address": A})
        ),
        "submit-passport-rate-limited": HttpRequest(
            "POST", "/registry/submit-passport", [], [("X-API-Key", w["limited"])], submit
        ),
        "internal-score": HttpRequest("GET", f"/internal/score/v2/{scorer}/{A}"),
        "embed-validate-key": HttpRequest("GET", "/internal/embed/validate-api-key", [], [("X-API-KEY", key)]),
        "embed-post-json": HttpRequest("POST", f"/internal/embed/stamps/{B}", body=_json(embed)),
        "embed-post-base64": HttpRequest("POST", f"/internal/embed/stamps/{B}", body=_json(embed), base64_body=True),
        "embed-post-bad-json": HttpRequest("POST", f"/internal/embed/stamps/{B}", body=b'{"scorer_id": '),
        "embed-score": HttpRequest("GET", f"/internal/embed/score/{scorer}/{A}"),
        "embed-weights": HttpRequest(
            "GET", "/internal/embed/weights", [("community_id", "0"), ("community_id", str(scorer))]
        ),
        "ceramic-bulk-post": HttpRequest("POST", "/ceramic-cache/stamps/bulk", [], bearer_b, _json(bulk)),
        "ceramic-bulk-patch": HttpRequest("PATCH", "/ceramic-cache/stamps/bulk", [], bearer_b, _json(bulk[:1])),
        "ceramic-bulk-delete": HttpRequest(
            "DELETE", "/ceramic-cache/stamps/bulk", [], bearer_b, _json([{"provider": "Google"}])
        ),
        "ceramic-score-get": HttpRequest(
            "GET", f"/ceramic-cache/score/{A}", [], [("authorization", f"Bearer {w['jwt_a']}")]
        ),
        "ceramic-score-post": HttpRequest(
            "POST", f"/ceramic-cache/score/{A}", [], [("Authorization", f"Bearer {w['jwt_a']}")], b"{}"
        ),
        "ceramic-stamp": HttpRequest("GET", "/ceramic-cache/stamp", [("address", B), ("address", A)]),
        "ceramic-weights": HttpRequest("GET", "/ceramic-cache/weights"),
        "health": HttpRequest("GET", "/health", [], accept),
        "not-found": HttpRequest("GET", "/v2/nowhere"),
        "cors-preflight": HttpRequest(
            "OPTIONS",
            f"/v2/stamps/{scorer}/score/{A}",
            [],
            [("Origin", "https://app.example"), ("Access-Control-Request-Method", "GET")],
        ),
    }
    # A fixed request id, so both runs answer the same X-Request-ID header.
    return {name: replace(r, headers=[*r.headers, ("X-Request-ID", f"req-{name}")]) for name, r in requests.items()}


class HttpServerClient(Client):
    """Django's test client minus the empty Cookie header it adds: a real client behind an HTTP server sends none."""

    def _base_environ(self, **request):
        environ = super()._base_environ(**request)
        if not environ.get("HTTP_COOKIE"):
            environ.pop("HTTP_COOKIE", None)
        return environ


ROUTE_NAMES = list(routes({"scorer": 0, "key": "", "limited": "", "jwt_a": "", "jwt_b": ""}))


def _generic_args(request: HttpRequest) -> tuple[list[Any], dict[str, Any]]:
    """`request` as the arguments of Django's test Client / RequestFactory `generic()`."""
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in request.query)
    headers = _joined(request.all_headers())
    headers.pop("content-length", None)
    content_type = headers.pop("content-type", None) or "application/octet-stream"
    path = request.path + (f"?{query}" if query else "")
    return [request.method, path, request.body], {"content_type": content_type, "headers": headers}


def through_client(request: HttpRequest) -> tuple[int, dict[str, str], bytes]:
    args, kwargs = _generic_args(request)
    response = HttpServerClient().generic(*args, **kwargs)
    return response.status_code, {k.lower(): v for k, v in response.items()}, response.content


@cache
def _wsgi_app() -> WSGIHandler:
    return WSGIHandler()


def through_wsgi(request: HttpRequest) -> tuple[int, dict[str, str], bytes]:
    """As gunicorn calls the app: Django's WSGI handler with all its request signals (the test client keeps the
    test's connection open across requests, so a connection that failed would outlive its request there)."""
    args, kwargs = _generic_args(request)
    environ = RequestFactory().generic(*args, **kwargs).environ
    started: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(_wsgi_app()(environ, lambda status, headers, exc_info=None: started.append((status, headers))))
    status, headers = started[0]
    return int(status.split()[0]), {k.lower(): v for k, v in headers}, body


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Repeated header lines, as an HTTP server hands them to the app: one value, joined by commas."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


@contextmanager
def keeping_the_test_transaction() -> Iterator[None]:
    """As Django's test client does: the request signals would close the test's open transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def invoke(lambda_event) -> dict:
    with keeping_the_test_transaction():
        return lambda_handler.handler(lambda_event, None)


def through_handler(request: HttpRequest, shape: str) -> tuple[int, dict[str, str], bytes]:
    response = invoke(event(request, shape))
    assert isinstance(response["body"], str)
    if shape == "alb":
        assert response["statusDescription"].startswith(f"{response['statusCode']} ")
    return response["statusCode"], response_headers(response), response_body(response)


def rows() -> list[str]:
    """Every row of the scorer's tables as JSON text, timestamps masked (the two runs happen at different times)."""
    found = []
    with connection.cursor() as cursor:
        for table in scorer_tables():
            cursor.execute(f"SELECT row_to_json(t)::text FROM {table} t")
            found += [f"{table} {TIMESTAMP.sub('<ts>', text)}" for (text,) in cursor.fetchall()]
    return sorted(found)


def restart_sequences() -> None:
    """Both runs start from the same ids (a rolled-back insert still used up its sequence value)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name) "
            "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ANY(%s)",
            [scorer_tables()],
        )
        for table, column, sequence in cursor.fetchall():
            if sequence:
                cursor.execute(f"SELECT setval(%s, COALESCE(MAX({column}), 0) + 1, false) FROM {table}", [sequence])


def prime_counters(redis_client: redis.Redis, limited_key: str) -> None:
    """Both runs start from the same counters: none but the limited key's, at its limit."""
    redis_client.flushdb()
    redis_client.set(original_counter_key(limited_key.split(".")[0], *LIMITED_RATE), LIMITED_RATE[0], ex=3605)


def counters(redis_client: redis.Redis) -> list[str]:
    """The rate-limit counters after a run (each with an expiry, as django-ratelimit sets them)."""
    found = []
    for name in sorted(redis_client.keys("*")):
        assert redis_client.ttl(name) > 0, name
        found.append(f"{name.decode()}={redis_client.get(name).decode()}")
    return found


def outcome(run, redis_client: redis.Redis, limited_key: str) -> tuple[int, dict[str, str], str, list[str]]:
    """Run one request in a transaction that is rolled back afterwards, from the same rate-limit counters; return
    what it answered, the rows it wrote and the counters it left."""
    prime_counters(redis_client, limited_key)
    rolled_back = transaction.atomic()
    rolled_back._from_testcase = True  # as Django's TestCase does: the services' durable blocks run inside it
    with rolled_back:
        restart_sequences()
        status, headers, body = run()
        written = rows() + counters(redis_client)
        transaction.set_rollback(True)
    return status, headers, TIMESTAMP.sub("<ts>", body.decode()), written


@pytest.mark.django_db
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("route", ROUTE_NAMES)
def test_the_handler_answers_and_writes_what_the_http_server_does(world, route, shape, redis_client):
    request = routes(world)[route].seen_by_app(shape)
    over_http = outcome(lambda: through_client(request), redis_client, world["limited"])
    over_lambda = outcome(lambda: through_handler(routes(world)[route], shape), redis_client, world["limited"])
    assert over_lambda[:3] == over_http[:3]  # status, headers, body
    lambda_rows, http_rows = over_lambda[3], over_http[3]
    assert ([r for r in lambda_rows if r not in http_rows], [r for r in http_rows if r not in lambda_rows]) == ([], [])
    assert lambda_rows == http_rows
    status, headers, body, _ = over_lambda
    if route != "health":
        assert headers["access-control-allow-origin"] == "*", headers
    if route not in ("not-found", "cors-preflight"):
        assert json.loads(body)  # a JSON body, never empty
    assert (status == 429) == route.endswith("-rate-limited")
    if route.startswith(("v2-score", "submit-passport")) and status != 401:
        # every partner-key call reaches the analytics table and counts in Redis, refused ones included
        assert any(r.startswith("account_accountapikeyanalytics ") for r in lambda_rows), lambda_rows
        assert any(r.startswith(":1:rl:") for r in lambda_rows), lambda_rows


@pytest.mark.django_db
@pytest.mark.parametrize("shape", SHAPES)
def test_the_analytics_row_holds_the_request_own_headers(world, shape):
    """No invented Content-Length on a GET; the key masked; a repeated header as one joined value."""
    status, _, _ = through_handler(routes(world)["v2-score"], shape)
    assert status == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT headers, query_params FROM account_accountapikeyanalytics")
        [(headers, query_params)] = cursor.fetchall()
    headers = json.loads(headers) if isinstance(headers, str) else headers
    query_params = json.loads(query_params) if isinstance(query_params, str) else query_params
    assert "Content-Length" not in headers and "Content-Type" not in headers
    assert headers["X-Api-Key"] == "***"
    assert headers["Accept"] == ("text/plain" if shape == "alb" else "application/json,text/plain")
    assert query_params == {"trace": ["2 b"] if shape == "alb" else ["1", "2 b"]}


@pytest.mark.django_db
def test_a_post_body_reaches_the_app_with_its_length(world):
    request = routes(world)["embed-post-base64"]
    status, _, body = through_handler(request, "alb-multi")
    assert status == 200 and json.loads(body)["success"] is True


@pytest.mark.parametrize(
    "bad_event",
    [
        {},
        None,
        "GET /health",
        {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
        {"requestContext": {"elb": {"targetGroupArn": "arn"}}, "httpMethod": "GET"},  # truncated: no path
        {"version": "2.0", "rawPath": "/health", "requestContext": {}},
        {"httpMethod": "GET", "path": "/health", "headers": {"x": 1}},
        {"httpMethod": "GET", "path": "/health", "headers": {}, "body": {"not": "a string"}},
    ],
    ids=["empty", "null", "string", "scheduled", "alb-truncated", "v2-no-http", "bad-header", "bad-body"],
)
def test_an_event_that_is_not_http_gets_a_400_and_a_log_line(bad_event, caplog):
    response = lambda_handler.handler(bad_event, None)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"].startswith("Not an HTTP event")
    assert response["headers"]["Content-Type"] == "application/json"
    assert any(record.getMessage().startswith("not an HTTP event") for record in caplog.records)


def test_an_error_outside_the_app_is_a_500_dict_and_fresh_connections(monkeypatch, caplog):
    """Django turns errors inside the app into responses; one escaping the WSGI application is still an answer."""

    def broken_application(environ, start_response):
        raise RuntimeError("boom")

    monkeypatch.setattr(lambda_handler, "application", broken_application)
    response = lambda_handler.handler(event(HttpRequest("GET", "/internal/embed/weights"), "apigw-v2"), None)
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"detail": "An error has occurred"}
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == ["Lambda invocation failed"]
    assert connection.connection is None


@pytest.mark.django_db
def test_a_body_that_is_not_base64_gets_a_400(world):
    bad = event(routes(world)["embed-post-json"], "alb") | {"isBase64Encoded": True, "body": "%%%"}
    response = invoke(bad)
    assert response["statusCode"] == 400
    assert json.loads(response["body"]) == {"detail": "The request body is not valid base64."}


PNG = b"\x89PNG\r\n\x1a\n\x00\xff"
urlpatterns = [path("logo.png", lambda request: HttpResponse(PNG, content_type="image/png"))]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
@pytest.mark.parametrize("shape", SHAPES)
def test_a_binary_response_is_base64_encoded(shape):
    response = invoke(event(HttpRequest("GET", "/logo.png"), shape))
    assert response["statusCode"] == 200 and response["isBase64Encoded"] is True
    assert base64.b64decode(response["body"]) == PNG


def _test_db_dsn() -> str:
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in ("dbname", "user", "password", "host", "port") and v}
    )


@pytest.mark.usefixtures("committed_db")
@pytest.mark.skipif(pooler.requested(), reason="the backend behind a pooler is not the client's own")
def test_the_connection_is_reused_across_invocations_and_replaced_after_it_broke(world, monkeypatch):
    # As in Lambda (settings/base.py): a reused connection is pinged on every invocation.
    monkeypatch.setitem(connection.settings_dict, "HEALTH_CHECK_IDLE_SECONDS", 0)
    health = event(HttpRequest("GET", "/health"), "alb")
    assert lambda_handler.handler(health, None)["statusCode"] == 200
    first = connection.connection
    assert lambda_handler.handler(health, None)["statusCode"] == 200
    assert connection.connection is first  # one connection per execution environment, kept between invocations
    backend_pid = first.info.backend_pid
    with psycopg.connect(_test_db_dsn(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    assert lambda_handler.handler(health, None)["statusCode"] == 200  # health-checked on reuse, reconnected
    assert connection.connection is not first and connection.connection.info.backend_pid != backend_pid
