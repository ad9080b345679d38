"""A small stand-in for the Lambda Runtime API, and the real runtime client (`awslambdaric`) run against it.

The stub hands out queued events on `GET /2018-06-01/runtime/invocation/next` and records what comes back on
`POST .../invocation/{id}/response`, `.../{id}/error` and `.../init/error`. When the queue is empty it holds the
`next` request open, as Lambda does between invocations: awslambdaric's native client crashes (SIGSEGV) when the
Runtime API closes that connection, so the client is ended by a signal once the last answer is in.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
PREFIX = "/2018-06-01/runtime"
# The port range for local servers (the Runtime API stub, gunicorn in bench/cold_start.py): 8500-8599 unless
# SCORER_PORTS names another ("8800-8899"), so several checkouts can test side by side.
_first, _last = (int(port) for port in os.environ.get("SCORER_PORTS", "8500-8599").split("-"))
PORTS = range(_first, _last + 1)


@dataclass
class Answer:
    kind: str  # "response", "error" or "init_error"
    payload: Any
    at: float  # time.perf_counter() when it arrived


@dataclass
class RuntimeApiStub:
    events: list[dict[str, Any]]
    answers: dict[str, Answer] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)
    init_error: Answer | None = None
    first_poll_at: float | None = None  # time.perf_counter() of the first `next` request: the end of init
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _closing: threading.Event = field(default_factory=threading.Event)

    def next_event(self) -> tuple[str, dict[str, Any]] | None:
        with self._changed:
            if self.first_poll_at is None:
                self.first_poll_at = time.perf_counter()
            if not self.events:
                return None
            request_id = str(uuid.uuid4())
            self.request_ids.append(request_id)
            return request_id, self.events.pop(0)

    def record(self, request_id: str | None, answer: Answer) -> None:
        with self._changed:
            if request_id is None:
                self.init_error = answer
            else:
                self.answers[request_id] = answer
            self._changed.notify_all()

    def wait_for_answers(self, count: int, timeout: float) -> list[Answer]:
        """The first `count` answers in invocation order; raises if they do not all arrive in time."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.init_error is None and sum(rid in self.answers for rid in self.request_ids[:count]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.answers)} of {count} answers after {timeout}s")
                self._changed.wait(remaining)
            if self.init_error is not None:
                raise RuntimeError(f"init error: {self.init_error.payload}")
            return [self.answers[rid] for rid in self.request_ids[:count]]

    def hold_open(self) -> None:
        self._closing.wait()


def _handler_class(stub: RuntimeApiStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path != f"{PREFIX}/invocation/next":
                return self._reply(404, b"{}")
            nxt = stub.next_event()
            if nxt is None:
                stub.hold_open()  # no more work: keep the client waiting, as Lambda does
                return None
            request_id, event = nxt
            deadline_ms = int((time.time() + 30) * 1000)
            self._reply(
                200,
                json.dumps(event).encode(),
                {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-west-2:123456789012:function:scorer-fast",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                },
            )

        def do_POST(self) -> None:  # noqa: N802
            arrived = time.perf_counter()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.removeprefix(PREFIX + "/").split("/")
            payload = json.loads(body) if body else None
            if parts == ["init", "error"]:
                stub.record(None, Answer("init_error", payload, arrived))
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                stub.record(parts[1], Answer(parts[2], payload, arrived))
            else:
                return self._reply(404, b"{}")
            self._reply(202, b'{"status":"OK"}')

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def free_port() -> int:
    """A port of this project's range with nothing listening on it (for a server started next)."""
    for port in PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {PORTS}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the client ended by signal: expected
            super().handle_error(request, client_address)


def _bind_in_range(stub: RuntimeApiStub) -> ThreadingHTTPServer:
    for port in PORTS:
        try:
            return _Server(("127.0.0.1", port), _handler_class(stub))
        except OSError:
            continue
    raise RuntimeError(f"no free port in {PORTS}")


@contextmanager
def serve_stub(events: list[dict[str, Any]]) -> Iterator[tuple[RuntimeApiStub, str]]:
    """Serve a stub with these events; yields it and its `host:port` (the AWS_LAMBDA_RUNTIME_API value)."""
    stub = RuntimeApiStub(events=list(events))
    server = _bind_in_range(stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub, f"127.0.0.1:{server.server_address[1]}"
    finally:
        stub._closing.set()
        server.shutdown()
        server.server_close()


@contextmanager
def lambda_process(
    runtime_api: str,
    env: dict[str, str],
    log: IO[bytes],
    python_args: tuple[str, ...] = (),
    *,
    python: str = sys.executable,
    cwd: Path = REPO,
) -> Iterator[subprocess.Popen]:
    """`python -m awslambdaric scorer_fast.lambda_handler.handler`, as the image's Lambda role runs it; its
    stdout and stderr go to `log`."""
    process = subprocess.Popen(
        [python, *python_args, "-m", "awslambdaric", "scorer_fast.lambda_handler.handler"],
        cwd=cwd,
        env={**os.environ, **env, "AWS_LAMBDA_RUNTIME_API": runtime_api},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
