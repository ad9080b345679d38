"""Spans carry address / scorer_id / stamp_count and time the pipeline steps; one JSON log line per request;
secrets never reach the logs."""

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from scorer_fast.observability import JsonFormatter
from tests import factories
from tests.credentials import signed_stamp

pytestmark = pytest.mark.django_db
A = "0x" + "a" * 40
_exporter = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def recording_tracer():
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_exporter))
    trace.set_tracer_provider(provider)  # once per process; later tests keep recording into memory
    yield


def test_a_scoring_request_records_its_span_and_steps(client):
    _exporter.clear()
    owner = factories.account()
    community = factories.community(owner=owner, weights={"Google": 1})
    key = factories.api_key(owner)
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    assert client.get(f"/v2/stamps/{community.id}/score/{A}", HTTP_X_API_KEY=key).status_code == 200
    spans = {span.name: span for span in _exporter.get_finished_spans()}
    server = spans["GET /v2/stamps/<scorer_id>/score/<address>"]
    assert server.attributes["address"] == A
    assert server.attributes["scorer_id"] == community.id
    assert server.attributes["stamp_count"] == 1
    assert server.attributes["http.status_code"] == 200
    for step in ("verify_credentials", "deduplicate", "write_score"):
        assert spans[step].parent.span_id == server.context.span_id


def test_each_request_logs_one_json_line_without_secrets(client, caplog):
    owner = factories.account()
    community = factories.community(owner=owner)
    key = factories.api_key(owner)
    with caplog.at_level(logging.DEBUG):
        client.get(f"/v2/stamps/{community.id}/score/{A}", HTTP_X_API_KEY=key, HTTP_X_REQUEST_ID="req-123")
        client.get(f"/v2/stamps/{community.id}/score/{A}", HTTP_X_API_KEY=key.split(".")[0] + ".wrong")
    access = [record for record in caplog.records if record.name == "scorer_fast.access"]
    assert len(access) == 2
    line = json.loads(JsonFormatter().format(access[0]))
    assert line["msg"] == "request" and line["request_id"] == "req-123" and line["status"] == 200
    assert line["route"] == "v2/stamps/<scorer_id>/score/<address>" and isinstance(line["duration_ms"], float)
    everything = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert key not in everything and key.split(".")[1] not in everything


def test_proofs_keys_and_tokens_are_redacted_from_any_log_line():
    from scorer_fast.observability import redact

    credential = signed_stamp(A, "Google")
    proof = credential["proof"]["proofValue"]
    key = "AbCdEfGh." + "x1" * 16
    token = "eyJhbGciOiJIUzI1NiJ9.eyJkaWQiOiJ4In0.c2lnbmF0dXJl"
    record = logging.LogRecord(
        "t", logging.ERROR, "", 0, "failed: %s %s %s", (json.dumps(credential), key, token), None
    )
    line = JsonFormatter().format(record)
    assert proof not in line and key not in line and token not in line
    assert "AbCdEfGh.***" in line and "***jwt***" in line and '\\"proofValue\\": \\"***' in line
    assert redact('{\\\\"jws\\\\": \\\\"abc.def\\\\"}') == '{\\\\"jws\\\\": \\\\"***\\\\"}'
