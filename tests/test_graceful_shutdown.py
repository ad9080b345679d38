"""gunicorn as production runs it (gunicorn.conf.py), stopped with SIGTERM (a deploy, a scale-in) while 8 clients
post stamps: every stamp the service acknowledged with a 200 is stored, no request gets a 5xx, and the server
exits cleanly. A request a stopping server no longer accepts is refused at the socket, never half-done."""

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from scorer_fast.models import CeramicCache
from tests import factories
from tests.credentials import signed_stamp
from tests.lambda_runtime import free_port
from tests.test_lambda_runtime import test_database_url

REPO = Path(__file__).resolve().parent.parent
CLIENTS = 8
POSTS_PER_CLIENT = 12  # more than a client gets through before the SIGTERM lands
ACKNOWLEDGED_BEFORE_SIGTERM = 8


def address(client: int, post: int) -> str:
    return "0x" + f"{client:02x}{post:02x}".rjust(40, "c")


def start_gunicorn(port: int, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings.test",
        "DATABASE_URL": test_database_url(),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "scorer_fast.wsgi:application"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if post(port, "GET", "/health", None)[0] == 200:
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def log_text(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


def post(port: int, method: str, path: str, body: dict | None) -> tuple[int, bytes]:
    """One request on its own connection (sync workers close it after each answer anyway)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, payload, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.usefixtures("committed_db")
def test_sigterm_while_8_clients_post_stamps_stores_every_acknowledged_stamp():
    community = factories.community(weights={"Google": 1}, threshold="1")
    stamps = {(c, n): signed_stamp(address(c, n), "Google") for c in range(CLIENTS) for n in range(POSTS_PER_CLIENT)}
    acknowledged: list[str] = []
    other_answers: list[tuple[str, int]] = []
    enough = threading.Event()
    port = free_port()

    def client(c: int) -> None:
        for n in range(POSTS_PER_CLIENT):
            body = {"scorer_id": community.id, "stamps": [stamps[(c, n)]]}
            try:
                status, _ = post(port, "POST", f"/internal/embed/stamps/{address(c, n)}", body)
            except OSError:  # refused or reset once the server stops: not acknowledged, and that is all
                return
            if status == 200:
                acknowledged.append(address(c, n))
                if len(acknowledged) >= ACKNOWLEDGED_BEFORE_SIGTERM:
                    enough.set()
            else:
                other_answers.append((address(c, n), status))

    with tempfile.TemporaryFile() as log:
        server = start_gunicorn(port, log)
        try:
            clients = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
            for thread in clients:
                thread.start()
            deadline = time.monotonic() + 60
            while not enough.wait(0.05) and any(t.is_alive() for t in clients) and time.monotonic() < deadline:
                pass
            assert enough.is_set(), (other_answers[:3], log_text(log))
            server.send_signal(signal.SIGTERM)
            for thread in clients:
                thread.join(60)
            exit_status = server.wait(30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        output = log_text(log)

    stored = set(
        CeramicCache.objects.filter(address__in=acknowledged, provider="Google", deleted_at__isnull=True).values_list(
            "address", flat=True
        )
    )
    print(f"\nSIGTERM: {len(acknowledged)} of {CLIENTS * POSTS_PER_CLIENT} posts acknowledged, {len(stored)} stored")
    assert other_answers == [], output
    assert sorted(set(acknowledged) - stored) == []
    assert len(acknowledged) < CLIENTS * POSTS_PER_CLIENT, "the SIGTERM landed after every post: nothing proven"
    assert exit_status == 0, output
    assert "Traceback" not in output, output
