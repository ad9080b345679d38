"""Logging and tracing, set up once: JSON log lines and OpenTelemetry spans (exported only when configured)."""

import contextvars
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
tracer = trace.get_tracer("scorer_fast")

# Defense in depth: whatever a message or traceback quotes (a failing SQL statement, say), these never leave.
_REDACTIONS = (
    (re.compile(r'(\\*"(?:proofValue|jws)\\*"\s*:\s*\\*")[^"\\]+'), r"\1***"),
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*"), "***jwt***"),
    (re.compile(r"\b([A-Za-z0-9]{8})\.[A-Za-z0-9]{32}\b"), r"\1.***"),
)
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# No log line here shows where it was logged from or the thread (gunicorn's show the process id): per the Logging
# HOWTO's "Optimization" section, logging then need not walk the stack nor look names up for every record, which
# the access line of each request would pay.
logging._srcfile = None
logging.logThreads = False
logging.logMultiprocessing = False


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra=` fields become keys. Callers never pass secrets in extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if request_id := request_id_var.get():
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


JsonFormatter.converter = time.gmtime


# Cheap necessary conditions for each redaction (a literal the pattern needs, or a search anchored on "."), so a
# plain line skips the three full scans.
_MAY_NEED_REDACTION: tuple[Callable[[str], object], ...] = (
    lambda text: "proofValue" in text or "jws" in text,
    lambda text: "eyJ" in text,
    re.compile(r"\.[A-Za-z0-9]{32}").search,
)


def redact(text: str) -> str:
    for (pattern, replacement), may_match in zip(_REDACTIONS, _MAY_NEED_REDACTION, strict=True):
        if may_match(text):
            text = pattern.sub(replacement, text)
    return text


def configure_tracing(*, service_name: str, otlp_endpoint: str) -> None:
    """Install an SDK tracer provider; spans leave the process only when an OTLP endpoint is configured."""
    if not otlp_endpoint:
        return  # the API's no-op tracer: spans cost next to nothing
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def spans_recorded() -> bool:
    """False while no tracer provider is installed (no OTLP endpoint): spans are then skipped, not built to be
    dropped."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def annotate(**attributes: Any) -> None:
    """Add attributes (address, scorer_id, stamp_count, ...) to the current request's span."""
    span = trace.get_current_span()
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key, value)


@contextmanager
def timed_step(name: str) -> Iterator[None]:
    """A child span for one pipeline step (verification, de-duplication, database writes)."""
    if not spans_recorded():
        yield
        return
    with tracer.start_as_current_span(name):
        yield
