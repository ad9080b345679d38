"""Hostile input found by the adversarial review: each request gets a clear 4xx (or the documented behaviour), never
a 5xx, and writes nothing it should not."""

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from scorer_fast import lambda_handler
from scorer_fast.admin.base import INVALID_SELECTION
from scorer_fast.api import NESTED_TOO_DEEPLY
from scorer_fast.models import AccountAPIKeyAnalytics, Passport, Score
from scorer_fast.services.analytics import TOO_LARGE_TO_STORE
from tests import factories
from tests.test_admin import ADMIN, support_user

# The Redis fixtures of tests/test_rate_limits.py (the embedded server), used by name below.
from tests.test_rate_limits import key_with_rate, submit, v2

pytestmark = pytest.mark.django_db
URL = "/registry/submit-passport"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def limited_partner(request):
    """A partner with rate limits on, counted on the test Redis."""
    request.getfixturevalue("rate_limits_on")
    owner = factories.account()
    return owner, factories.community(owner=owner, weights={"Google": 1})


@pytest.mark.parametrize(
    "rate", ["10/0m", "3/0", "3/0s", "3/0d", "3/00h", "abc", "1.5/m", "5/m.x", "os.getcwd", " 3/h", "/h"]
)
def test_an_unparsable_rate_never_limits_and_never_fails(client, limited_partner, rate):
    """The original answers 500 for each: django-ratelimit divides by a zero-length window, imports a rate with
    "." as a function, and cannot match the others. Such a key is served without a limit (docs/decisions.md)."""
    owner, community = limited_partner
    key = key_with_rate(owner, rate)
    assert [v2(client, community, key).status_code for _ in range(3)] == [200, 200, 200]
    assert submit(client, community, key).status_code == 200
    assert Passport.objects.count() == 1 and Score.objects.count() == 1


@pytest.fixture
def partner_key():
    owner = factories.account()
    return factories.community(owner=owner, weights={"Google": 1}), factories.api_key(owner)


@pytest.fixture
def production_recursion_limit():
    """The interpreter's default limit, as in a worker: tests/wallets.py imports eth-account, whose py_ecc raises
    it to 100,000 for the whole test process (scorer_fast/domain/signatures.py puts it back in the service)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(limit)


@pytest.mark.usefixtures("production_recursion_limit")
@pytest.mark.parametrize("body", ["[" * 100_000, '{"address": ' * 50_000, '{"address": "0x", "x": ' + "[" * 5_000])
def test_a_body_nested_too_deeply_for_the_json_parser_is_a_400(client, partner_key, settings, body):
    settings.FF_API_ANALYTICS = True
    community, key = partner_key
    response = client.post(URL, body, content_type="application/json", HTTP_X_API_KEY=key)
    assert (response.status_code, response.json()) == (400, {"error": NESTED_TOO_DEEPLY})
    assert Passport.objects.count() == 0 and Score.objects.count() == 0
    row = AccountAPIKeyAnalytics.objects.get()
    assert (row.status_code, row.payload) == (400, None)


def test_the_usage_row_of_a_body_with_nan_or_a_lone_surrogate_is_still_written(client, partner_key, settings):
    """Python's JSON parser accepts NaN, Infinity and lone surrogate escapes, which jsonb refuses: the row keeps
    them as text (NaN as "NaN", a lone surrogate and a NUL as U+FFFD), so no request goes unrecorded."""
    settings.FF_API_ANALYTICS = True
    community, key = partner_key
    body = '{"address": "0x%s", "scorer_id": NaN, "n": [Infinity, -Infinity, 1.5], "s": "\\ud800x"}' % ("a" * 40)
    response = client.post(URL, body, content_type="application/json", HTTP_X_API_KEY=key, HTTP_X_ODD="a\x00b")
    assert (response.status_code, response.json()) == (404, {"error": "No scorer matches the given criteria."})
    row = AccountAPIKeyAnalytics.objects.get()
    assert row.status_code == 404
    assert row.payload == {
        "address": "0x" + "a" * 40,
        "scorer_id": "NaN",
        "n": ["Infinity", "-Infinity", 1.5],
        "s": "\ufffdx",
    }
    assert row.headers["X-Odd"] == "a\ufffdb" and row.headers["X-Api-Key"] == "***"


def test_recovering_a_signature_keeps_the_interpreters_recursion_limit():
    """eth-account's py_ecc raises the limit to 100,000 when first imported; after that a body of 100,000 `[`
    crashed the worker with SIGSEGV in the JSON parser. A fresh interpreter, as a worker's first signed request."""
    script = (
        "import json, sys\n"
        "from scorer_fast.domain.signatures import recover_signer\n"
        "from scorer_fast.errors import BadRequest\n"
        "limit = sys.getrecursionlimit()\n"
        "try:\n"
        "    recover_signer('m', '0x' + '11' * 64 + '1b')  # imports eth-account, as a worker's first signature\n"
        "except BadRequest:\n"
        "    pass\n"
        "assert sys.getrecursionlimit() == limit, sys.getrecursionlimit()\n"
        "try:\n"
        "    json.loads('[' * 100_000)\n"
        "except RecursionError:\n"
        "    print('RecursionError')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "RecursionError"


@pytest.mark.usefixtures("production_recursion_limit")
# 500: deep enough for the recursive walk to fail, small enough for the real schema's btree index on `payload`
# (a payload above ~2.7 kB compressed cannot be indexed, so its row cannot be written there at all).
@pytest.mark.parametrize("depth", [500])
def test_a_body_nested_hundreds_deep_is_scored_and_recorded_once(client, partner_key, settings, depth):
    """Parsable, so served: the usage row must not fail on it afterwards (a RecursionError there was a 500 sent
    after the scoring had committed)."""
    settings.FF_API_ANALYTICS = True
    community, key = partner_key
    nested = "[" * depth + "]" * depth
    body = f'{{"address": "0x{"a" * 40}", "scorer_id": {community.id}, "x": {nested}}}'
    response = client.post(URL, body, content_type="application/json", HTTP_X_API_KEY=key)
    assert response.status_code == 200
    row = AccountAPIKeyAnalytics.objects.get()
    assert (row.status_code, row.payload["scorer_id"]) == (200, community.id)
    assert json.dumps(row.payload["x"]).replace(", ", ",") == nested


_ALB = {"requestContext": {"elb": {"targetGroupArn": "arn"}}, "httpMethod": "GET", "path": "/health", "headers": {}}
_V1 = {"httpMethod": "GET", "path": "/health", "requestContext": {"stage": "prod"}}
_V2_HTTP = {"method": "GET", "path": "/health", "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1"}
_V2 = {
    "version": "2.0",
    "rawPath": "/health",
    "rawQueryString": "",
    "headers": {},
    "requestContext": {"http": _V2_HTTP},
}


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({**_ALB, "queryStringParameters": ["a", "b"]}, "queryStringParameters"),
        ({**_V1, "multiValueQueryStringParameters": "a=b"}, "multiValueQueryStringParameters"),
        ({**_ALB, "httpMethod": "POST", "body": "\udcff"}, "body"),
        ({**_V1, "multiValueHeaders": {"Host": []}}, "multiValueHeaders"),
        ({**_V2, "cookies": [1]}, "cookies"),
        ({**_V2, "cookies": "a=b"}, "cookies"),
    ],
    ids=[
        "alb-query-list",
        "v1-multi-query-string",
        "lone-surrogate-body",
        "empty-header-list",
        "cookie-int",
        "cookie-str",
    ],
)
def test_a_malformed_lambda_event_is_a_400_naming_the_field_not_a_500(event, field, caplog):
    """Each of these reached the WSGI adapter, which raised (TypeError, IndexError, UnicodeEncodeError): a 500."""
    response = lambda_handler.handler(event, None)
    assert response["statusCode"] == 400
    assert json.loads(response["body"]) == {"error": f"Not an HTTP event: missing or malformed field {field!r}"}
    assert not any(record.levelname == "ERROR" for record in caplog.records)


@pytest.mark.parametrize("request_id", ["a\nb", "a\rb", "x" * 201, "\u4e2d", "a b"])
def test_an_unusable_caller_request_id_is_replaced_not_echoed(client, request_id):
    """A CR or LF cannot go into the echoed header (Django raised: a 500, e.g. from a Lambda event); a huge one
    would be copied into every log line. The caller's id is kept only when it is 1-200 visible ASCII characters."""
    response = client.get("/health", HTTP_X_REQUEST_ID=request_id)
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_a_usable_caller_request_id_is_echoed(client):
    assert client.get("/health", HTTP_X_REQUEST_ID="Root=1-abc;Parent=2").get("X-Request-ID") == "Root=1-abc;Parent=2"


def test_a_path_longer_than_its_column_still_leaves_a_usage_row(client, partner_key, settings):
    """`path` is varchar(1000): a longer one made the insert fail and the request went unrecorded."""
    settings.FF_API_ANALYTICS = True
    community, key = partner_key
    path = f"/v2/stamps/{community.id}/score/0x{'a' * 2000}"
    response = client.get(path, HTTP_X_API_KEY=key)
    assert (response.status_code, response.json()) == (400, {"error": "Invalid address."})
    row = AccountAPIKeyAnalytics.objects.get()
    assert (row.status_code, row.path, row.error) == (400, path[:1000], "Invalid address.")


def test_values_too_large_for_the_real_schemas_indexes_still_leave_a_usage_row(client, partner_key, settings):
    """The production table has btree indexes on `query_params` and `payload` (an entry cannot exceed ~2.7 kB):
    a partner adding 4 kB of query string or body made its requests unrecorded. There the large value becomes a
    marker; on the models' tables (no such index) it is stored whole."""
    settings.FF_API_ANALYTICS = True
    community, key = partner_key
    noise = secrets.token_hex(2000)
    v2 = client.get(f"/v2/stamps/{community.id}/score/0x{'a' * 40}?x={noise}", HTTP_X_API_KEY=key)
    body = json.dumps({"address": "0x" + "a" * 40, "scorer_id": community.id, "x": noise})
    v1 = client.post(URL, body, content_type="application/json", HTTP_X_API_KEY=key)
    assert (v2.status_code, v1.status_code) == (200, 200)
    first, second = AccountAPIKeyAnalytics.objects.order_by("id")
    assert first.query_params in ({"x": [noise]}, TOO_LARGE_TO_STORE) and first.status_code == 200
    assert second.payload in (json.loads(body), TOO_LARGE_TO_STORE) and second.status_code == 200


def _arabic_indic(number: int) -> str:
    return "".join(chr(0x0660 + int(digit)) for digit in str(number))


@pytest.mark.parametrize("route", ["v2", "submit-passport"])
@pytest.mark.parametrize("scorer_ref", ["\u00b2", "own id in Arabic-Indic digits", "9" * 5000, "-" + "9" * 5000])
def test_a_scorer_id_that_is_not_ascii_digits_or_too_long_for_int_is_no_scorer_not_a_500(
    client, partner_key, route, scorer_ref
):
    """str.isdigit() accepts "²" (int() refuses it) and "١٢" (int() reads it as 12); int() refuses over 4,300 digits."""
    community, key = partner_key
    if scorer_ref.startswith("own id"):
        scorer_ref = _arabic_indic(community.id)
    if route == "v2":
        response = client.get(f"/v2/stamps/{scorer_ref}/score/0x{'a' * 40}", HTTP_X_API_KEY=key)
    else:
        body = json.dumps({"address": "0x" + "a" * 40, "scorer_id": scorer_ref})
        response = client.post(URL, body, content_type="application/json", HTTP_X_API_KEY=key)
    assert (response.status_code, response.json()) == (404, {"error": "No scorer matches the given criteria."})


@pytest.mark.parametrize("name", ["humanpointsmultiplier", "passport"])
def test_an_admin_page_for_a_key_with_a_nul_is_not_found_not_a_500(client, name):
    client.force_login(support_user(rescore=True))
    response = client.get(f"{ADMIN}/{name}/%00/change/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_an_api_key_page_with_a_nul_answers_like_every_key_page_not_a_500(client):
    """Every API key URL answers the same admin-styled 403 (keys have no page), whether or not the key exists."""
    client.force_login(support_user(rescore=True))
    response = client.get(f"{ADMIN}/accountapikey/%00/change/")
    assert response.status_code == 403 and "has no page of its own" in response.content.decode()


@pytest.mark.parametrize(("name", "action"), [("score", "recalculate_user_score"), ("ceramiccache", "undelete_stamps")])
@pytest.mark.parametrize("selected", ["abc", "\x00", "", "1.5"])
def test_an_admin_action_on_a_forged_selection_is_refused_with_a_message(client, name, action, selected):
    client.force_login(support_user(rescore=True))
    response = client.post(
        f"{ADMIN}/{name}/", {"action": action, "_selected_action": [selected], "index": 0}, follow=True
    )
    assert response.status_code == 200
    assert INVALID_SELECTION.replace("'", "&#x27;") in response.content.decode()
