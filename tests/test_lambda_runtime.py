"""The real runtime path, end to end: `python -m awslambdaric scorer_fast.lambda_handler.handler` in a subprocess,
fed by a Lambda Runtime API stub (tests/lambda_runtime.py), against the test database."""

import json
import tempfile
from urllib.parse import quote

import pytest
from django.db import connection

from scorer_fast.models import CeramicCache, Score
from tests import factories
from tests.credentials import signed_stamp
from tests.lambda_events import HttpRequest, event, response_body
from tests.lambda_runtime import lambda_process, serve_stub

A = "0x" + "a" * 40
WEIGHTS = {"Google": 15, "Ens": 15, "Github": 15}


def test_database_url() -> str:
    """The test database as a DATABASE_URL for the child process (settings/database.py reads `?host=`)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    host = db["HOST"] or ""
    netloc = f"{auth}@" if auth else ""
    if host.startswith("/"):
        return f"postgresql://{netloc}/{quote(db['NAME'])}?host={quote(host, safe='')}" + (
            f"&port={db['PORT']}" if db["PORT"] else ""
        )
    return f"postgresql://{netloc}{host}{':' + db['PORT'] if db['PORT'] else ''}/{quote(db['NAME'])}"


test_database_url.__test__ = False  # a helper, not a test


@pytest.mark.usefixtures("committed_db")
def test_awslambdaric_serves_http_events_through_the_handler():
    community = factories.community(weights=WEIGHTS, threshold="20")
    key = factories.api_key(community.account)
    stamps = [signed_stamp(A, provider) for provider in WEIGHTS]
    v2_score = HttpRequest("GET", f"/v2/stamps/{community.id}/score/{A}", headers=[("x-api-key", key)])
    embed_post = HttpRequest(
        "POST", f"/internal/embed/stamps/{A}", body=json.dumps({"scorer_id": community.id, "stamps": stamps}).encode()
    )
    events = [event(v2_score, "apigw-v2"), event(embed_post, "alb"), event(v2_score, "alb-multi"), {}]
    env = {"DJANGO_SETTINGS_MODULE": "settings.test", "DATABASE_URL": test_database_url()}
    with tempfile.TemporaryFile() as log, serve_stub(events) as (stub, runtime_api):
        with lambda_process(runtime_api, env, log) as process:
            try:
                answers = stub.wait_for_answers(len(events), timeout=60)
            finally:
                exited = process.poll()
        log.seek(0)
        output = log.read().decode(errors="replace")
    assert exited is None, output  # still waiting for the next event: nothing crashed
    assert [answer.kind for answer in answers] == ["response"] * 4, output
    before, saved, after, not_http = (answer.payload for answer in answers)

    assert before["statusCode"] == 200 and before["headers"]["content-type"] == "application/json; charset=utf-8"
    assert json.loads(response_body(before))["score"] == "0.00000"
    assert saved["statusCode"] == 200 and saved["statusDescription"] == "200 OK"
    assert json.loads(response_body(saved))["score"]["score"] == "45.00000"
    assert after["statusCode"] == 200 and after["multiValueHeaders"]["Access-Control-Allow-Origin"] == ["*"]
    assert json.loads(response_body(after))["score"] == "45.00000"
    assert not_http["statusCode"] == 400 and json.loads(not_http["body"])["error"].startswith("Not an HTTP event")

    assert CeramicCache.objects.filter(address=A, source_app=2, deleted_at__isnull=True).count() == 3
    assert Score.objects.get().evidence["rawScore"] == "45"
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line["msg"].startswith("not an HTTP event") for line in lines), output
    assert "Traceback" not in output, output
