"""The prepared-statement opt-in (`?server_side_binding=true&prepare_threshold=N` on DATABASE_URL, README): every
route answers exactly as it does with client-side binding. With server-side binding PostgreSQL types each `$n`
itself, so a parameter it cannot type (in a SELECT list, a VALUES row, `%s IS NULL`) fails the statement; with
`prepare_threshold=0` every statement is prepared on its first run."""

import io
import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from psycopg import ClientCursor

from scorer_fast.models import Community, Nonce, Score
from settings.database import database_from_url
from tests import factories, pooler
from tests.conftest import forget_worker_caches, scorer_tables
from tests.credentials import signed_stamp
from tests.helpers import INTERNAL_AUTH
from tests.test_admin import ADMIN, support_user
from tests.tokens import RSA_PUBLIC_PEM, rs256_token
from tests.wallets import WALLET_ADDRESS, sign_nonce

A = "0x" + "a" * 40  # the partner routes' address
B = "0x" + "b" * 40  # the ceramic-cache routes'
C = "0x" + "c" * 40  # the embed routes'
D = "0x" + "d" * 40  # claims a nullifier A holds (de-duplication)
PROVIDERS = ["Google", "Ens", "Github"]
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)")


@contextmanager
def database_options(**options: Any) -> Iterator[None]:
    """The connection reopened with `options` added to its OPTIONS (as DATABASE_URL's query would add them)."""
    saved = connection.settings_dict["OPTIONS"]
    connection.close()
    connection.settings_dict["OPTIONS"] = {**saved, **options}
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["OPTIONS"] = saved


@pytest.fixture
def production_flags(settings):
    settings.SIWE_JWT_PUBLIC_KEY = RSA_PUBLIC_PEM
    settings.HUMAN_POINTS_ENABLED = True
    settings.HUMAN_POINTS_WRITE_ENABLED = True
    settings.HUMAN_POINTS_START_TIMESTAMP = 0
    settings.FF_API_ANALYTICS = True
    return settings


def credentials() -> dict[str, dict[str, Any]]:
    """Signed once, so both runs send the same stamps (and answer the same expiration dates)."""
    signed = {f"{address}:{p}": signed_stamp(address, p) for address in (A, B, C) for p in PROVIDERS}
    signed[f"{B}:Google:newer"] = signed_stamp(B, "Google", days_valid=80)
    signed[f"{A}:Google"] = signed_stamp(A, "Google", nullifiers=["v0:shared", "v0:a"])
    signed[f"{D}:Google"] = signed_stamp(D, "Google", nullifiers=["v0:shared", "v0:d"])
    return signed


def scenario(settings, stamps: dict[str, dict[str, Any]]) -> list[tuple[str, int, Any]]:
    """Every main route, cold and warm, on fresh tables (same ids each run: identities restart)."""
    forget_worker_caches()
    owner = factories.account(address="0x" + "1" * 40)
    community = factories.community(
        owner=owner, weights={p: 2 for p in PROVIDERS}, threshold="3", human_points_program=True
    )
    Community.objects.filter(pk=community.pk).update(name="prepared opt-in")  # not the factory's running number
    key = factories.api_key(owner)
    legacy_key = factories.api_key(owner, storage="pbkdf2")  # its sha256 column is filled on first use
    settings.CERAMIC_CACHE_SCORER_ID = community.id
    for provider in PROVIDERS[:2]:
        factories.cache_stamp(A, stamps[f"{A}:{provider}"])
    client = Client()
    token = {"HTTP_AUTHORIZATION": f"Bearer {rs256_token(B)}"}
    answers: list[tuple[str, int, Any]] = []

    def call(name: str, method: str, path: str, body: Any = None, **headers: Any) -> None:
        if body is None:
            response = getattr(client, method)(path, **headers)
        else:
            response = getattr(client, method)(path, json.dumps(body), content_type="application/json", **headers)
        answers.append((name, response.status_code, response.json()))

    v2 = f"/v2/stamps/{community.id}/score/{A}"
    call("v2 score, cold", "get", v2, HTTP_X_API_KEY=key)
    call("v2 score, warm", "get", v2, HTTP_X_API_KEY=key)
    factories.cache_stamp(A, stamps[f"{A}:Github"])
    call("v2 score, a new stamp", "get", v2, HTTP_X_API_KEY=key)
    factories.cache_stamp(D, stamps[f"{D}:Google"])
    call("v2 score, a deduplicated stamp", "get", f"/v2/stamps/{community.id}/score/{D}", HTTP_X_API_KEY=legacy_key)
    call("v2 score, unknown scorer", "get", f"/v2/stamps/999999/score/{A}", HTTP_X_API_KEY=key)
    call("internal score", "get", f"/internal/score/v2/{community.id}/{A}", **INTERNAL_AUTH)
    submit = {"address": A, "scorer_id": community.id}
    call("submit-passport", "post", "/registry/submit-passport", submit, HTTP_X_API_KEY=key)
    Nonce.objects.create(nonce="n1", created_on=datetime.now(UTC), was_used=False, expires_on=None)
    signed = {"address": WALLET_ADDRESS, "scorer_id": community.id, "signature": sign_nonce("n1"), "nonce": "n1"}
    call("submit-passport, signed", "post", "/registry/submit-passport", signed, HTTP_X_API_KEY=key)
    call("submit-passport, nonce used", "post", "/registry/submit-passport", signed, HTTP_X_API_KEY=key)

    bulk = "/ceramic-cache/stamps/bulk"
    added = [{"provider": p, "stamp": stamps[f"{B}:{p}"]} for p in PROVIDERS]
    call("ceramic-cache POST", "post", bulk, added, **token)
    patched = [{"provider": "Google", "stamp": stamps[f"{B}:Google:newer"]}, {"provider": "Ens"}]
    call("ceramic-cache PATCH", "patch", bulk, patched, **token)
    call("ceramic-cache DELETE", "delete", bulk, [{"provider": "Github"}], **token)
    call("ceramic-cache DELETE, missing", "delete", bulk, [{"provider": "Github"}], **token)
    call("ceramic-cache GET score", "get", f"/ceramic-cache/score/{B}", **token)
    call("ceramic-cache POST score (rescore)", "post", f"/ceramic-cache/score/{B}", {}, **token)
    call("ceramic-cache stamps", "get", f"/ceramic-cache/stamp?address={B}")
    call("ceramic-cache weights", "get", "/ceramic-cache/weights")

    embed = {"scorer_id": community.id, "stamps": [stamps[f"{C}:{p}"] for p in PROVIDERS]}
    call("embed validate-api-key", "get", "/internal/embed/validate-api-key", HTTP_X_API_KEY=key)
    call("embed POST stamps", "post", f"/internal/embed/stamps/{C}", embed)
    call("embed GET score", "get", f"/internal/embed/score/{community.id}/{C}")
    call("embed weights", "get", f"/internal/embed/weights?community_id={community.id}")

    staff = Client()
    staff.force_login(support_user(rescore=True))
    score_id = Score.objects.get(passport__address=A, passport__community=community).pk
    rescored = staff.post(f"{ADMIN}/score/{score_id}/recalculate/", follow=True)
    messages = [str(message) for message in rescored.context["messages"]]
    answers.append(("admin rescore", rescored.status_code, [rescored.redirect_chain, messages]))
    answers.append(("audit_scores", *audit(community.id)))
    answers.append(("rows written", 200, table_rows()))
    return answers


def audit(community_id: int) -> tuple[int, Any]:
    """`manage.py audit_scores` in-process: (exit status, its --json report)."""
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "report.json"
        try:
            call_command("audit_scores", "--json", str(report), "--community", str(community_id), stdout=io.StringIO())
            status = 0
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else 1
        return status, json.loads(report.read_text())


def table_rows() -> dict[str, list[Any]]:
    """Every row of the service's tables but the keys' (random per run), as JSON, in a stable order."""
    found = {}
    with connection.cursor() as cursor:
        for table in scorer_tables():
            if table not in {"account_accountapikey", "auth_user"}:
                cursor.execute(f"SELECT to_jsonb(t)::text FROM {table} t")
                documents = [json.loads(text) for (text,) in cursor.fetchall()]
                for document in documents:
                    for random in {"api_key_id", "username", "password"} & document.keys():
                        document[random] = "<random>"
                found[table] = sorted(documents, key=lambda document: json.dumps(document, sort_keys=True))
    return found


def without_now(value: Any, now: datetime) -> Any:
    """Timestamps of the run itself (score times, row times, also inside stored texts) read "<now>"; stamp dates
    (days ahead) are kept."""
    if isinstance(value, dict):
        return {key: without_now(item, now) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_now(item, now) for item in value]
    if isinstance(value, str):
        return ISO.sub(lambda found: _now_or_kept(found.group(0), now), value)
    return value


def _now_or_kept(text: str, now: datetime) -> str:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return "<now>" if abs(moment - now) < timedelta(minutes=10) else text


def empty_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(scorer_tables())} RESTART IDENTITY CASCADE")


def prepared_statement_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


def opted_in(query: str) -> dict[str, Any]:
    """The options DATABASE_URL's query string turns on (settings/database.py)."""
    url = f"postgres://u@db/scorer?{query}"
    options = database_from_url(url, conn_max_age=0, connect_timeout=3, app_name="t")["OPTIONS"]
    return {key: options[key] for key in ("server_side_binding", "prepare_threshold")}


# 0: every statement prepared on its first run; 1: README's setting (prepared from the second run on)
@pytest.mark.parametrize("threshold", [0, 1])
def test_every_route_answers_the_same_with_prepared_statements(committed_db, production_flags, threshold):
    if pooler.requested():
        pytest.skip("the pooled pass's pgbouncer (transaction mode, no max_prepared_statements) drops them")
    stamps = credentials()
    now = datetime.now(UTC)
    with database_options():
        plain = without_now(scenario(production_flags, stamps), now)
        assert isinstance(connection.connection.cursor(), ClientCursor)
    empty_tables()

    with database_options(**opted_in(f"server_side_binding=true&prepare_threshold={threshold}")):
        prepared = without_now(scenario(production_flags, stamps), now)
        assert not isinstance(connection.connection.cursor(), ClientCursor)  # psycopg's server-side binding
        assert connection.connection.prepare_threshold == threshold and prepared_statement_count() > 10

    # the scenario answers what the routes' own tests expect (not, say, 401s everywhere)
    assert [(name, status) for name, status, _ in plain if status != 200] == [
        ("v2 score, unknown scorer", 404),
        ("submit-passport, nonce used", 400),
        ("ceramic-cache POST", 201),
        ("ceramic-cache DELETE, missing", 404),
        ("audit_scores", 0),  # its exit status: no unexplained difference
    ]
    deduplicated = plain[3][2]["stamps"]["Google"]
    assert (deduplicated["score"], deduplicated["dedup"]) == ("0.00000", True)
    for expected, got in zip(plain, prepared, strict=True):
        assert got == expected
