"""Settings validation, /health, the OpenAPI page, the admin and the demo-data command."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from scorer_fast.models import Community
from settings.checks import production_problems
from settings.env import env_seconds
from tests import factories

REPO = Path(__file__).resolve().parent.parent
GOOD = {
    "secret_key": "k" * 50,
    "trusted_issuers": ["did:ethr:0x0000000000000000000000000000000000000001"],
    "demo_issuer_did": "did:ethr:0xdemo",
    "ceramic_cache_scorer_id": 335,
    "database_url": "postgres://db/scorer",
    "debug": False,
    "allowed_hosts": ["scorer.example.org"],
    "internal_api_token": "i" * 40,
}
# A production environment with real-looking values (the database is unreachable: nothing here queries it).
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "settings.base",
    "SECRET_KEY": "k" * 50,
    "TRUSTED_IAM_ISSUERS": '["did:ethr:0x0000000000000000000000000000000000000001"]',
    "CERAMIC_CACHE_SCORER_ID": "335",
    "DATABASE_URL": "postgres://127.0.0.1:1/x",
    "ALLOWED_HOSTS": "testserver",
    "CGRANTS_API_TOKEN": "i" * 40,
}


def run_python(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """A fresh interpreter with exactly this environment on top of a clean one (no SCORER_ENV inherited)."""
    base = {k: v for k, v in os.environ.items() if k not in {"SCORER_ENV", "DATABASE_URL", *PRODUCTION_ENV}}
    return subprocess.run(
        [sys.executable, *(["-c", code] if code else []), *args],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_with_real_values_pass():
    assert production_problems(**GOOD) == []


@pytest.mark.parametrize(
    "override, problem",
    [
        ({"secret_key": ""}, "SECRET_KEY"),
        ({"secret_key": "secret-test-value"}, "SECRET_KEY"),
        ({"trusted_issuers": []}, "TRUSTED_IAM_ISSUERS must list"),
        (
            {"trusted_issuers": ["did:key:GlMY_1zkc0i11O-wMBWbSiUfIkZiXzFLlAQ89pdfyBA", "did:ethr:0xabczyx"]},
            "placeholder",
        ),
        ({"trusted_issuers": ["did:ethr:0xdemo"]}, "placeholder or demo"),
        ({"ceramic_cache_scorer_id": None}, "CERAMIC_CACHE_SCORER_ID"),
        ({"database_url": ""}, "DATABASE_URL"),
        ({"debug": True}, "DEBUG"),
        ({"allowed_hosts": ["*"]}, "ALLOWED_HOSTS"),
        ({"allowed_hosts": []}, "ALLOWED_HOSTS"),
        ({"internal_api_token": ""}, "CGRANTS_API_TOKEN"),
        ({"internal_api_token": "scorer-fast-development-internal-token"}, "CGRANTS_API_TOKEN"),
    ],
)
def test_placeholders_are_refused_in_production(override, problem):
    assert any(problem in text for text in production_problems(**{**GOOD, **override}))


@pytest.mark.parametrize("scorer_env", [None, "production"], ids=["unset", "production"])
def test_the_service_refuses_to_start_in_production_with_defaults(scorer_env, tmp_path):
    """Production is the default: without the development opt-in there is no published SECRET_KEY, no demo
    issuer, no internal token and no embedded PostgreSQL (the server is never started)."""
    env = {"DJANGO_SETTINGS_MODULE": "settings.base", "PGSERVER_DATA": str(tmp_path / "pg")}
    if scorer_env:
        env["SCORER_ENV"] = scorer_env
    result = run_python("import django; django.setup()", env)
    assert result.returncode != 0
    assert "Refusing to start in production mode" in result.stderr
    for problem in ("SECRET_KEY", "TRUSTED_IAM_ISSUERS", "DATABASE_URL", "ALLOWED_HOSTS", "CGRANTS_API_TOKEN"):
        assert problem in result.stderr, problem
    assert not (tmp_path / "pg" / "postmaster.pid").exists()


def test_production_has_secure_defaults_and_no_demo_code():
    code = (
        "import django, json; django.setup()\n"
        "from django.conf import settings as s\n"
        "print(json.dumps([s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,"
        " 'demo' in s.INSTALLED_APPS, s.DEBUG]))"
    )
    result = run_python(code, PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[true, true, 31536000, false, false]"
    seeding = run_python("", PRODUCTION_ENV, "manage.py", "seed_demo")
    assert seeding.returncode != 0 and "Unknown command: 'seed_demo'" in seeding.stderr
    # The runtime package holds no private key: the demo issuer's key and the signing helpers live in demo/.
    runtime = "\n".join(path.read_text() for path in (REPO / "scorer_fast").rglob("*.py"))
    assert "123456789abcdef01122334455667788" not in runtime and "issue_credential" not in runtime


def test_public_deployments_can_switch_off_the_admin_and_the_api_docs():
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "c = Client()\n"
        "print([c.get(p).status_code for p in ('/admin/', '/docs', '/openapi.json')])"
    )
    on = run_python(code, PRODUCTION_ENV)
    assert on.stdout.splitlines()[-1] == "[302, 200, 200]", on.stderr
    off = run_python(code, {**PRODUCTION_ENV, "ADMIN_ENABLED": "off", "API_DOCS_ENABLED": "off"})
    assert off.stdout.splitlines()[-1] == "[404, 404, 404]", off.stderr


@pytest.mark.django_db
def test_health_and_openapi(client):
    assert client.get("/health").json() == {"status": "ok", "database": "ok"}
    schema = client.get("/openapi.json").json()
    for path in (
        "/v2/stamps/{scorer_id}/score/{address}",
        "/internal/embed/validate-api-key",
        "/internal/embed/stamps/{address}",
        "/internal/embed/score/{scorer_id}/{address}",
        "/ceramic-cache/stamps/bulk",
        "/ceramic-cache/score/{address}",
    ):
        assert path in schema["paths"], path
    assert client.get("/docs").status_code == 200


@pytest.mark.django_db
def test_admin_pages_load_and_never_show_key_hashes(client):
    owner = factories.account()
    key = factories.api_key(owner)
    factories.community(owner=owner)
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    assert client.get("/admin/").status_code == 200
    for path in (
        "accountapikey",
        "community",
        "passport",
        "score",
        "ceramiccache",
        "hashscorerlink",
        "event",
        "stamp",
        "account",
    ):
        response = client.get(f"/admin/scorer_fast/{path}/")
        assert response.status_code == 200, path
    from scorer_fast.models import AccountAPIKey

    row = AccountAPIKey.objects.get()
    page = client.get("/admin/scorer_fast/accountapikey/").content.decode()
    assert row.prefix in page and "sha256$" not in page and "pbkdf2" not in page and key not in page
    assert client.get(f"/admin/scorer_fast/accountapikey/{row.pk}/change/").status_code in (302, 403, 404)
    assert client.get("/admin/scorer_fast/accountapikey/add/").status_code == 403


@pytest.mark.django_db
def test_demo_data_gives_working_curl_commands(client, tmp_path, settings):
    settings.TRUSTED_IAM_ISSUERS = [settings.DEMO_ISSUER_DID]  # as the development settings do
    settings.API_KEY_CACHE_SECONDS = 0  # the rotated key is refused at once (tests/test_worker_caches.py: the bound)
    out = io.StringIO()
    env_file = tmp_path / "demo.env"
    any_database = bool(settings.DATABASE_URL)  # CI may point the suite at a real server
    call_command("seed_demo", env_file=env_file, stdout=out, allow_any_database=any_database)
    text = out.getvalue()
    key = re.search(r"shown once\): (\S+)", text).group(1)
    community_id = int(re.search(r"CERAMIC_CACHE_SCORER_ID=(\d+)", env_file.read_text()).group(1))
    passing = client.get(f"/v2/stamps/{community_id}/score/0x{'d' * 40}", HTTP_X_API_KEY=key).json()
    assert passing["passing_score"] is True and passing["score"] == "22.72200"
    below = client.get(f"/v2/stamps/{community_id}/score/0x{'e' * 40}", HTTP_X_API_KEY=key).json()
    assert below["passing_score"] is False and len(below["stamps"]) == 3
    duplicate = client.get(f"/v2/stamps/{community_id}/score/0x{'f' * 40}", HTTP_X_API_KEY=key).json()
    assert duplicate["stamps"]["Github"]["dedup"] is True
    call_command("seed_demo", stdout=io.StringIO(), allow_any_database=any_database)  # idempotent, rotates the key
    assert client.get(f"/v2/stamps/{community_id}/score/0x{'d' * 40}", HTTP_X_API_KEY=key).status_code == 401


@pytest.mark.parametrize("exit_code, expected", [(3, 3), (0, 0), (None, 0)])
def test_the_gunicorn_exit_hook_keeps_the_workers_exit_status(exit_code, expected):
    """It leaves with os._exit (didkit may crash a normal shutdown) but must not hide a boot failure (3)."""
    code = (
        "import runpy, sys\n"
        "hook = runpy.run_path('gunicorn.conf.py')['worker_exit']\n"
        f"try:\n    sys.exit({exit_code})\nfinally:\n    hook(None, None)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True)
    assert result.returncode == expected


@pytest.mark.django_db
def test_demo_data_is_refused_for_a_database_other_than_the_embedded_one(settings):
    settings.DATABASE_URL = "postgres://db.example.org/scorer"
    with pytest.raises(CommandError, match="--allow-any-database"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not Community.objects.exists()


def test_ci_fails_loudly_when_the_real_schema_is_missing(tmp_path):
    """In CI the real-schema pass is required: a missing schema file fails scripts/test instead of skipping."""
    env = {**os.environ, "CI": "true", "SCORER_SCHEMA_SQL": str(tmp_path / "missing.sql")}
    result = subprocess.run(["bash", "scripts/test"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "the real schema" in result.stderr and "missing.sql is missing" in result.stderr


@pytest.mark.parametrize(("raw", "expected"), [("", 2.0), ("0.5", 0.5), ("0", None), ("-1", None), ("soon", None)])
def test_a_wait_bound_from_the_environment_is_a_positive_number_of_seconds(monkeypatch, raw, expected):
    """DB_UNAVAILABLE_AFTER_SECONDS=0 would answer every request 503: refused at start-up, like a malformed one."""
    monkeypatch.setenv("DB_UNAVAILABLE_AFTER_SECONDS", raw)
    if expected is None:
        with pytest.raises(ImproperlyConfigured, match="DB_UNAVAILABLE_AFTER_SECONDS must be a positive number"):
            env_seconds("DB_UNAVAILABLE_AFTER_SECONDS", 2.0)
    else:
        assert env_seconds("DB_UNAVAILABLE_AFTER_SECONDS", 2.0) == expected


@pytest.mark.django_db
def test_only_pages_outside_the_api_get_the_admins_session_user_and_messages(client):
    """API routes read none of them, so their hooks are skipped there (scorer_fast/middleware.py)."""
    api = client.get("/v2/stamps/1/score/0x" + "a" * 40, HTTP_X_API_KEY="not-a-key").wsgi_request
    page = client.get("/admin/login/").wsgi_request
    assert not any(hasattr(api, name) for name in ("session", "user", "_messages"))
    assert all(hasattr(page, name) for name in ("session", "user", "_messages"))
