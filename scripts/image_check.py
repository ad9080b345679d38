"""The Dockerfile's steps, replayed without Docker (for machines without a Docker daemon or base images).

It builds what the image would hold in a scratch folder: a fresh virtualenv standing in for python:3.11-slim,
wheels built and installed from requirements/base.txt alone, the build context filtered by .dockerignore,
compileall and collectstatic as in the Dockerfile. Then it runs both roles from that folder with the image's
environment (production mode) against a fresh database: gunicorn answers /health and a route, and
`python -m awslambdaric scorer_fast.lambda_handler.handler` answers events from the Runtime API stub.
It also checks that the context holds no tests, demo data, benchmarks or keys, and that the image refuses to
start without real secrets. Usage: .venv/bin/python scripts/image_check.py
"""

import fnmatch
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import database_url as fresh_bench_database  # noqa: E402
from tests.lambda_events import HttpRequest, event  # noqa: E402
from tests.lambda_runtime import free_port, lambda_process, serve_stub  # noqa: E402

WORK = Path(tempfile.gettempdir()) / "scorer_fast_image"
# What must never be in the image: tests and their keys, the demo package and its issuer key, benchmarks.
FORBIDDEN = ("tests", "demo", "bench", "scripts", ".venv", "settings/test.py", "scorer_fast/demo_issuer.py")


def image_env() -> dict[str, str]:
    """The Dockerfile's ENV lines (HOST kept on 127.0.0.1 here)."""
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG", "TMPDIR")}
    return env | {
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "settings.base",
        "SCORER_ENV": "production",
        "HOST": "127.0.0.1",
        "PORT": "8000",
    }


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(str(arg) for arg in args)[:160], flush=True)
    return subprocess.run(args, check=True, **kwargs)


def ignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch("/".join(parts[: n + 1]), pattern) for n in range(len(parts))):
            return True
    return False


def context_files() -> list[str]:
    """The files `COPY . .` takes: the working tree less .dockerignore (its patterns as Docker reads them, for the
    forms that file uses)."""
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    files = (path.relative_to(REPO).as_posix() for path in sorted(REPO.rglob("*")) if path.is_file())
    return [relative for relative in files if not ignored(relative, patterns)]


def copy_context(target: Path) -> None:
    for relative in context_files():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target / relative)
    present = [name for name in FORBIDDEN if (target / name).exists()]
    assert not present, f"the build context holds {present}"


def build() -> Path:
    """The two stages: wheels from requirements/base.txt only, then the runtime folder."""
    shutil.rmtree(WORK, ignore_errors=True)
    app, python = WORK / "app", WORK / "python"
    app.mkdir(parents=True)
    run([sys._base_executable, "-m", "venv", str(python)])
    pip = [str(python / "bin/python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    run([*pip, "wheel", "--wheel-dir", str(WORK / "wheels"), "-r", str(REPO / "requirements/base.txt")])
    run([*pip, "install", "--no-index", "--find-links", str(WORK / "wheels"), *map(str, (WORK / "wheels").glob("*"))])
    copy_context(app)
    build_env = image_env() | {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TRUSTED_IAM_ISSUERS": '["did:key:build-only"]',
        "CERAMIC_CACHE_SCORER_ID": "0",
        "DATABASE_URL": "postgres://build/none",
        "CGRANTS_API_TOKEN": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "build.invalid",
    }
    run([str(python / "bin/python"), "-m", "compileall", "-q", str(app)], env=build_env)
    run(
        [str(python / "bin/python"), "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=app,
        env=build_env,
    )
    return app


def get(port: int, path: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def check_gunicorn(app: Path, env: dict[str, str]) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(WORK / "python/bin/gunicorn"), "--config", "gunicorn.conf.py", "scorer_fast.wsgi:application"],
        cwd=app,
        env=env | {"PORT": str(port)},
    )
    try:
        for _ in range(300):
            try:
                status, body = get(port, "/health")
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("gunicorn did not answer")
        assert (status, body) == (200, {"status": "ok", "database": "ok"}), (status, body)
        status, body = get(port, f"/v2/stamps/1/score/0x{'a' * 40}")
        assert status == 401 and "error" in body, (status, body)
        print(f"gunicorn role: /health 200, /v2 without a key {status} {body}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def check_lambda(app: Path, env: dict[str, str]) -> None:
    events = [event(HttpRequest("GET", "/health"), "alb"), {}]
    with tempfile.TemporaryFile() as log, serve_stub(events) as (stub, runtime_api):
        started = time.perf_counter()
        with lambda_process(runtime_api, env, log, python=str(WORK / "python/bin/python"), cwd=app):
            health, not_http = stub.wait_for_answers(2, timeout=60)
    init_ms, first_ms = ((moment - started) * 1000 for moment in (stub.first_poll_at, health.at))
    assert health.payload["statusCode"] == 200, health.payload
    assert json.loads(health.payload["body"]) == {"status": "ok", "database": "ok"}, health.payload
    assert not_http.payload["statusCode"] == 400, not_http.payload
    print(f"Lambda role: /health {health.payload['statusCode']}, {{}} {not_http.payload['statusCode']}")
    print(f"  init {init_ms:.0f} ms, first answer {first_ms:.0f} ms after process start (one run, no proofs)")


def check_refuses_placeholders(app: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(WORK / "python/bin/python"), "-c", "import scorer_fast.lambda_handler"],
        cwd=app,
        env=image_env() | {"DATABASE_URL": env["DATABASE_URL"]},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "Refusing to start in production mode" in result.stderr, result.stderr[-800:]
    print("production by default: without real secrets the image refuses to start")


def main() -> None:
    app = build()
    database_url = fresh_bench_database()
    env = image_env() | {
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TRUSTED_IAM_ISSUERS": '["did:key:z6MkrealIssuerForTheImageCheckOnly"]',
        "CERAMIC_CACHE_SCORER_ID": "1",
        "CGRANTS_API_TOKEN": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    run([str(WORK / "python/bin/python"), "manage.py", "bootstrap_db"], cwd=app, env=env)  # the schema, from the image
    check_refuses_placeholders(app, env)
    check_gunicorn(app, env)
    check_lambda(app, env)
    print(f"OK: the Dockerfile's steps build and run both roles ({WORK})")
    if not os.environ.get("DATABASE_URL"):
        from settings import embedded_pg

        embedded_pg.stop()


if __name__ == "__main__":
    main()
