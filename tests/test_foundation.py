"""Settings validation, /health, the OpenAPI page, the admin and the demo-data command."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from settings.checks import production_problems
from tests import factories

REPO = Path(__file__).resolve().parent.parent
GOOD = {
    "secret_key": "k" * 50,
    "trusted_issuers": ["did:ethr:0x0000000000000000000000000000000000000001"],
    "demo_issuer_did": "did:ethr:0xdemo",
    "ceramic_cache_scorer_id": 335,
    "database_url": "postgres://db/scorer",
    "debug": False,
}


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
    ],
)
def test_placeholders_are_refused_in_production(override, problem):
    assert any(problem in text for text in production_problems(**{**GOOD, **override}))


def test_the_service_refuses_to_start_in_production_with_defaults():
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "TRUSTED_IAM_ISSUERS", "DATABASE_URL"}}
    env.update(SCORER_ENV="production", DJANGO_SETTINGS_MODULE="settings.base", DATABASE_URL="postgres://127.0.0.1:1/x")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "Refusing to start in production mode" in result.stderr and "SECRET_KEY" in result.stderr


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
    out = io.StringIO()
    env_file = tmp_path / "demo.env"
    call_command("seed_demo", env_file=env_file, stdout=out)
    text = out.getvalue()
    key = re.search(r"shown once\): (\S+)", text).group(1)
    community_id = int(re.search(r"CERAMIC_CACHE_SCORER_ID=(\d+)", env_file.read_text()).group(1))
    passing = client.get(f"/v2/stamps/{community_id}/score/0x{'d' * 40}", HTTP_X_API_KEY=key).json()
    assert passing["passing_score"] is True and passing["score"] == "22.72200"
    below = client.get(f"/v2/stamps/{community_id}/score/0x{'e' * 40}", HTTP_X_API_KEY=key).json()
    assert below["passing_score"] is False and len(below["stamps"]) == 3
    duplicate = client.get(f"/v2/stamps/{community_id}/score/0x{'f' * 40}", HTTP_X_API_KEY=key).json()
    assert duplicate["stamps"]["Github"]["dedup"] is True
    call_command("seed_demo", stdout=io.StringIO())  # idempotent: runs again, rotates the key
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
