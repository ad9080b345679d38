"""`manage.py audit_scores`: stored scores written as the original writes them (tests/original_rows.py) are
recomputed at their scoring time, read-only; every difference is listed, explained only where the data shows why."""

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import InternalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from scorer_fast.db import audit as queries
from scorer_fast.models import (
    BinaryWeightedScorer,
    CustomCredential,
    CustomCredentialRuleset,
    CustomPlatform,
    Score,
    WeightedScorer,
)
from tests import factories
from tests.credentials import signed_stamp
from tests.original_rows import (
    LIFO_ERROR,
    ceramic_row,
    error_like_the_original,
    processing_like_the_original,
    revoke,
    score_like_the_original,
)
from tests.tokens import RSA_PUBLIC_PEM, rs256_token

A, B, C = "0x" + "a" * 40, "0x" + "b" * 40, "0x" + "c" * 40
WEIGHTS = {"Google": 0.525, "Ens": 0.208, "Github": 15}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def community(committed_db):
    return factories.community(weights=WEIGHTS, threshold="20")


def ago(**delta) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def audit(tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    """Run the command in-process: (exit status, the --json report, stdout)."""
    report, out = tmp_path / "report.json", io.StringIO()
    try:
        call_command("audit_scores", "--json", str(report), *args, stdout=out)
        status = 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    return status, json.loads(report.read_text()), out.getvalue()


def scored_with_two_stamps(community, address: str = A, *, at: datetime | None = None) -> int:
    """The original scored Google and Ens at `at` (an hour ago), from rows posted a minute before."""
    at = at or ago(hours=1)
    stamps = [signed_stamp(address, "Google"), signed_stamp(address, "Ens")]
    for credential in stamps:
        ceramic_row(address, credential, created_at=at - timedelta(minutes=1))
    return score_like_the_original(address, community.id, at=at, weights=WEIGHTS, threshold="20", kept=stamps)


def test_rows_the_original_wrote_report_equal(community, tmp_path):
    score_id = scored_with_two_stamps(community)
    assert Score.objects.get(id=score_id).evidence["rawScore"] == "0.7330000000000000126565424807"
    status, report, out = audit(tmp_path)
    assert (status, report) == (0, {"audited": 1, "equal": 1, "skipped": {}, "differences": []})
    assert "1 equal, 0 different" in out


def test_a_tampered_raw_score_is_an_unexplained_difference(community, tmp_path):
    score_id = scored_with_two_stamps(community)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE registry_score SET evidence = jsonb_set(evidence, '{rawScore}', '\"0.9\"')")
    status, report, out = audit(tmp_path)
    assert status == 1
    assert report == {
        "audited": 1,
        "equal": 0,
        "skipped": {},
        "differences": [
            {
                "address": A,
                "community_id": community.id,
                "score_id": score_id,
                "fields": {"evidence.rawScore": {"stored": "0.9", "recomputed": "0.7330000000000000126565424807"}},
                "explained": False,
                "cause": None,
            }
        ],
    }
    assert "Differences by field: evidence 1." in out and f"{A} community {community.id}" in out


def test_a_weight_changed_after_the_scoring_is_unexplained(community, tmp_path):
    scored_with_two_stamps(community)
    BinaryWeightedScorer.objects.filter(scorer_ptr_id=community.scorer_id).update(weights={**WEIGHTS, "Ens": 20})
    status, report, _ = audit(tmp_path)
    (difference,) = report["differences"]
    assert status == 1 and difference["explained"] is False and difference["cause"] is None
    assert difference["fields"] == {
        "score": {"stored": "0.000000000", "recomputed": "1.000000000"},
        "evidence.success": {"stored": False, "recomputed": True},
        "evidence.rawScore": {
            "stored": "0.7330000000000000126565424807",
            "recomputed": "20.52500000000000002220446049",
        },
        "stamp_scores.Ens": {"stored": 0.208, "recomputed": 20.0},
        "stamps.Ens": {
            "stored": {
                "score": "0.20800",
                "dedup": False,
                "expiration_date": difference["fields"]["stamps.Ens"]["stored"]["expiration_date"],
            },
            "recomputed": {
                "score": "20.00000",
                "dedup": False,
                "expiration_date": difference["fields"]["stamps.Ens"]["stored"]["expiration_date"],
            },
        },
    }


def test_a_stamp_deleted_after_the_scoring_was_live_then(community, tmp_path):
    """PATCH after the scoring: the old row soft-deleted, a new one created — the scoring saw the old one."""
    scored_with_two_stamps(community)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ceramic_cache_ceramiccache SET deleted_at = now(), updated_at = now()")
    ceramic_row(A, signed_stamp(A, "Github"), created_at=ago(minutes=1))
    assert audit(tmp_path)[:2] == (0, {"audited": 1, "equal": 1, "skipped": {}, "differences": []})


def test_a_stamp_removed_from_the_cache_is_an_unexplained_difference(community, tmp_path):
    scored_with_two_stamps(community)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM ceramic_cache_ceramiccache WHERE provider = 'Ens'")
    status, report, _ = audit(tmp_path)
    (difference,) = report["differences"]
    assert status == 1 and difference["explained"] is False
    assert set(difference["fields"]) == {"evidence.rawScore", "stamp_scores.Ens", "stamps.Ens"}
    assert difference["fields"]["stamps.Ens"]["recomputed"] is None
    assert difference["fields"]["stamp_scores.Ens"] == {"stored": 0.208, "recomputed": None}


def test_a_stamp_deleted_before_the_scoring_does_not_count(community, tmp_path):
    """The stored score counts a stamp that was deleted before its scoring time: the original never does that."""
    at = ago(hours=1)
    google, ens = signed_stamp(A, "Google"), signed_stamp(A, "Ens")
    ceramic_row(A, google, created_at=at - timedelta(minutes=2))
    ceramic_row(A, ens, created_at=at - timedelta(minutes=2), deleted_at=at - timedelta(minutes=1))
    score_like_the_original(A, community.id, at=at, weights=WEIGHTS, threshold="20", kept=[google, ens])
    (difference,) = audit(tmp_path)[1]["differences"]
    assert difference["fields"]["stamps.Ens"]["recomputed"] is None and difference["explained"] is False


def test_a_stamp_that_expired_after_the_scoring_is_judged_at_the_scoring_time(community, tmp_path):
    at = ago(days=2)
    expiring = signed_stamp(A, "Google", days_valid=-1)  # expired yesterday, a day after the scoring
    ceramic_row(A, expiring, created_at=at - timedelta(minutes=1))
    score_like_the_original(A, community.id, at=at, weights=WEIGHTS, threshold="20", kept=[expiring])
    assert audit(tmp_path)[:2] == (0, {"audited": 1, "equal": 1, "skipped": {}, "differences": []})


def test_a_stamp_already_expired_at_the_scoring_is_an_unexplained_difference(community, tmp_path):
    at = ago(hours=1)
    expired = signed_stamp(A, "Google", days_valid=-1)
    ceramic_row(A, expired, created_at=at - timedelta(minutes=1))
    score_like_the_original(A, community.id, at=at, weights=WEIGHTS, threshold="20", kept=[expired])
    (difference,) = audit(tmp_path)[1]["differences"]
    assert difference["fields"]["stamps.Google"]["recomputed"] is None and difference["explained"] is False
    assert difference["fields"]["expiration_date"]["recomputed"] is None


def shared(address: str) -> dict:
    return signed_stamp(address, "Google", nullifiers=["v0:one-human"])


def test_a_stamp_deduplicated_against_another_address_reports_equal(community, tmp_path):
    first, second = shared(A), shared(B)
    ceramic_row(A, first, created_at=ago(hours=3))
    score_like_the_original(A, community.id, at=ago(hours=2), weights=WEIGHTS, threshold="20", kept=[first])
    ceramic_row(B, second, created_at=ago(hours=2))
    score_like_the_original(
        B, community.id, at=ago(hours=1), weights=WEIGHTS, threshold="20", kept=[], deduplicated=[second]
    )
    assert audit(tmp_path)[:2] == (0, {"audited": 2, "equal": 2, "skipped": {}, "differences": []})


def taken_over_after_the_scoring(community) -> tuple[int, dict]:
    """B scored at a time A's claim had expired, so B took the nullifier; B's claim ran out and A took it back
    (A's later scoring): the link now says A, the stored score of B says kept."""
    b_stamp, a_stamp = shared(B), shared(A)
    ceramic_row(B, b_stamp, created_at=ago(hours=3))
    score_id = score_like_the_original(
        B, community.id, at=ago(hours=2), weights=WEIGHTS, threshold="20", kept=[b_stamp]
    )
    ceramic_row(A, a_stamp, created_at=ago(minutes=30))
    score_like_the_original(A, community.id, at=ago(minutes=20), weights=WEIGHTS, threshold="20", kept=[a_stamp])
    return score_id, a_stamp


def test_a_hash_link_taken_by_another_address_after_the_scoring_is_explained(community, tmp_path):
    score_id, _ = taken_over_after_the_scoring(community)
    status, report, out = audit(tmp_path)
    (difference,) = report["differences"]
    assert status == 0 and (report["audited"], report["equal"]) == (2, 1)
    assert difference["score_id"] == score_id and difference["explained"] is True
    assert difference["fields"]["stamps.Google"]["stored"]["dedup"] is False
    assert difference["fields"]["stamps.Google"]["recomputed"]["dedup"] is True
    assert difference["cause"].startswith(f"the hash link of v0:one-human (Google) is now held by {A}, who scored")
    assert "kept its Google stamp carrying it (SCU event" in difference["cause"]
    assert "hash link changed after the scoring 1" in out


def test_a_hash_link_changed_by_hand_is_not_explained(community, tmp_path):
    """The same stored rows, but nothing records a scoring of A after B's: the link's change is not shown."""
    score_id, _ = taken_over_after_the_scoring(community)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM registry_event WHERE address = %s", [A])
    status, report, _ = audit(tmp_path)
    (difference,) = report["differences"]
    assert status == 1 and difference["score_id"] == score_id and difference["explained"] is False


def test_a_later_scoring_of_the_holder_that_did_not_keep_the_nullifier_explains_nothing(community, tmp_path):
    """A scored after B, but its stamp carrying the nullifier was deduplicated then: that scoring wrote no link,
    so the link's holder A (set by hand) is not shown to have changed after B's scoring."""
    b_stamp, a_stamp = shared(B), shared(A)
    ceramic_row(B, b_stamp, created_at=ago(hours=3))
    score_id = score_like_the_original(
        B, community.id, at=ago(hours=2), weights=WEIGHTS, threshold="20", kept=[b_stamp]
    )
    ceramic_row(A, a_stamp, created_at=ago(minutes=30))
    score_like_the_original(
        A, community.id, at=ago(minutes=20), weights=WEIGHTS, threshold="20", kept=[], deduplicated=[a_stamp]
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE registry_hashscorerlink SET address = %s WHERE hash = 'v0:one-human'", [A])
    differences = {d["score_id"]: d for d in audit(tmp_path)[1]["differences"]}
    assert differences[score_id]["explained"] is False


def test_a_stamp_revoked_after_the_scoring_is_explained(community, tmp_path):
    scored_with_two_stamps(community)
    revoke(ceramic_row_id(A, "Ens"))
    (difference,) = audit(tmp_path)[1]["differences"]
    assert difference["explained"] is True and "is revoked now" in difference["cause"]


def ceramic_row_id(address: str, provider: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM ceramic_cache_ceramiccache WHERE address = %s AND provider = %s", [address, provider]
        )
        return cursor.fetchone()[0]


def test_a_row_under_another_providers_name_is_explained_by_decision_19(community, tmp_path):
    """The original counted a Google credential stored under the provider name Ens; scorer_fast drops it."""
    at = ago(hours=1)
    google, misfiled = signed_stamp(A, "Google"), signed_stamp(A, "Google", nullifiers=["v0:other"])
    ceramic_row(A, google, created_at=at - timedelta(minutes=1))
    ceramic_row(A, misfiled, created_at=at - timedelta(minutes=1), provider="Ens")
    score_like_the_original(
        A, community.id, at=at, weights=WEIGHTS, threshold="20", kept=[google, misfiled], row_providers={1: "Ens"}
    )
    status, report, _ = audit(tmp_path)
    (difference,) = report["differences"]
    assert status == 0 and difference["explained"] is True
    assert difference["fields"]["stamps.Ens"]["recomputed"] is None
    assert difference["cause"].startswith("the row's provider differs from its credential's: Ens (credential: Google)")


def test_a_stamp_row_rewritten_after_the_scoring_is_explained_by_registry_stamp(community, tmp_path):
    scored_with_two_stamps(community)
    rewritten = json.dumps(signed_stamp(A, "Ens", days_valid=3))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ceramic_cache_ceramiccache SET stamp = %s::jsonb, updated_at = now() WHERE provider = 'Ens'",
            [rewritten],
        )
    (difference,) = audit(tmp_path)[1]["differences"]
    assert set(difference["fields"]) == {"expiration_date", "stamps.Ens"} and difference["explained"] is True
    assert "was updated at" in difference["cause"] and "registry_stamp holds the credential" in difference["cause"]
    with connection.cursor() as cursor:  # the same rewrite without a trace in updated_at: not shown
        cursor.execute("UPDATE ceramic_cache_ceramiccache SET updated_at = created_at")
    (difference,) = audit(tmp_path)[1]["differences"]
    assert difference["explained"] is False


def test_a_stamp_whose_proof_does_not_verify_never_counts(community, tmp_path):
    at = ago(hours=1)
    junk = signed_stamp(A, "Google")
    junk["proof"]["proofValue"] = "0xdeadbeef"  # didkit panics on it: an invalid stamp, not a failed audit
    ceramic_row(A, junk, created_at=at - timedelta(minutes=1))
    score_like_the_original(A, community.id, at=at, weights=WEIGHTS, threshold="20", kept=[junk])
    status, report, _ = audit(tmp_path)
    (difference,) = report["differences"]
    assert status == 1 and difference["fields"]["stamps.Google"]["recomputed"] is None


def test_error_rows_are_judged_where_no_scoring_time_is_needed(committed_db, tmp_path):
    fifo = factories.community(weights=WEIGHTS, rule="FIFO")
    lifo = factories.community(weights=WEIGHTS)
    error_like_the_original(A, fifo.id, "Invalid rule")  # scorer_fast fails the same way: equal
    lifo_error = error_like_the_original(B, lifo.id, LIFO_ERROR)  # decision 13: scorer_fast scores these
    error_like_the_original(C, lifo.id, "connection reset")  # no scoring time, no known cause: not audited
    processing_like_the_original(A, lifo.id)
    status, report, _ = audit(tmp_path)
    assert status == 0
    assert report == {
        "audited": 2,
        "equal": 1,
        "skipped": {"ERROR without a scoring time": 1, "status PROCESSING (no result stored)": 1},
        "differences": [
            {
                "address": B,
                "community_id": lifo.id,
                "score_id": lifo_error,
                "fields": {
                    "status": {"stored": "ERROR", "recomputed": "DONE"},
                    "error": {"stored": LIFO_ERROR, "recomputed": None},
                },
                "explained": True,
                "cause": "the original ends some LIFO corners in this error; scorer_fast scores them "
                "(docs/decisions.md, LIFO corners)",
            }
        ],
    }


def test_the_audit_writes_nothing_a_write_in_its_transaction_fails(community):
    with pytest.raises(InternalError, match="read-only transaction"), transaction.atomic():
        queries.begin_read_only()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO registry_event (action, address, created_at, data) VALUES ('SCU', 'x', now(), '{}')"
            )


def test_every_statement_of_an_audit_only_reads(community, tmp_path):
    """Also the cause look-ups: a difference explained by a hash link, one unexplained, a revoked stamp."""
    taken_over_after_the_scoring(community)
    scored_with_two_stamps(community, C)
    revoke(ceramic_row_id(C, "Ens"))
    with CaptureQueriesContext(connection) as captured:
        audit(tmp_path)
    statements = [query["sql"].strip() for query in captured.captured_queries]
    assert any("registry_event" in statement for statement in statements)  # the cause look-ups ran
    allowed = ("BEGIN", "COMMIT", "SELECT ", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    assert [statement for statement in statements if not statement.startswith(allowed)] == []
    assert not any("advisory" in statement or "FOR UPDATE" in statement for statement in statements)


# --- filters and arguments ---------------------------------------------------------------------------------------


def test_filters_select_by_community_address_since_and_limit(community, tmp_path):
    other = factories.community(weights=WEIGHTS)
    scored_with_two_stamps(community, A, at=ago(hours=5))
    scored_with_two_stamps(community, B, at=ago(hours=1))
    scored_with_two_stamps(other, C, at=ago(hours=1))
    assert audit(tmp_path, "--community", str(other.id))[1]["audited"] == 1
    assert audit(tmp_path, "--address", B.upper().replace("0X", "0x"), "--address", C)[1]["audited"] == 2
    assert audit(tmp_path, "--since", ago(hours=2).isoformat())[1]["audited"] == 2
    assert audit(tmp_path, "--limit", "2", "--batch-size", "1")[1]["audited"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--address", "0x123"], "--address: malformed address '0x123'"),
        (["--community", "987654"], "unknown community: 987654"),
        (["--since", "yesterday"], "--since: not an ISO 8601 date or datetime: 'yesterday'"),
        (["--limit", "0"], "--limit must be a positive integer, got '0'"),
    ],
)
def test_bad_arguments_are_refused_with_status_2(community, tmp_path, args, message):
    with pytest.raises(CommandError, match="^" + message.replace("(", r"\(") + "$") as refused:
        call_command("audit_scores", *args)
    assert refused.value.returncode == 2


# --- the real command line, production settings, a SELECT-only role ----------------------------------------------


def production_env(database_url: str) -> dict[str, str]:
    from django.conf import settings

    keep = {"PATH", "HOME", "LANG", "PGSERVER_DATA"}
    env = {name: value for name, value in os.environ.items() if name in keep}
    # Production mode (SCORER_ENV unset), without the web server's secrets: the audit does not use them.
    return {**env, "DATABASE_URL": database_url, "TRUSTED_IAM_ISSUERS": json.dumps(settings.TRUSTED_IAM_ISSUERS)}


# The grants docs/deploy.md gives the audit's role: these tables, SELECT only.
AUDITED_TABLES = (
    "registry_score, registry_passport, registry_stamp, registry_hashscorerlink, registry_event, "
    "ceramic_cache_ceramiccache, ceramic_cache_revocation, account_community, scorer_weighted_scorer, "
    "scorer_weighted_weightedscorer, scorer_weighted_binaryweightedscorer, account_customization, "
    "account_allowlist, account_addresslist, account_customcredential, account_customcredentialruleset"
).split(", ")


def select_only_url() -> str:
    """A role that may only SELECT the tables, on the test database."""
    params = connection.settings_dict
    with connection.cursor() as cursor:
        cursor.execute("DROP ROLE IF EXISTS audit_reader")  # left over by an interrupted run
        cursor.execute("CREATE ROLE audit_reader LOGIN PASSWORD 'reader'")
        cursor.execute(f"GRANT SELECT ON {', '.join(AUDITED_TABLES)} TO audit_reader")
    host = f"?host={params['HOST']}" if params["HOST"].startswith("/") else ""
    netloc = "" if host else params["HOST"] + (f":{params['PORT']}" if params["PORT"] else "")
    port = f"&port={params['PORT']}" if host and params["PORT"] else ""
    return f"postgresql://audit_reader:reader@{netloc}/{params['NAME']}{host}{port}"


@pytest.fixture
def reader_url(community):
    url = select_only_url()
    yield url
    with connection.cursor() as cursor:
        cursor.execute("DROP OWNED BY audit_reader")
        cursor.execute("DROP ROLE audit_reader")


def command_line(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "audit_scores", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_runs_in_production_mode_as_a_select_only_role(community, reader_url, tmp_path):
    scored_with_two_stamps(community, A)
    score_id = scored_with_two_stamps(community, B)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE registry_score SET score = 1 WHERE id = %s", [score_id])
    report = tmp_path / "audit.json"
    done = command_line(production_env(reader_url), "--json", str(report))
    assert done.returncode == 1, done.stderr
    body = json.loads(report.read_text())
    assert (body["audited"], body["equal"]) == (2, 1)
    assert [(d["score_id"], list(d["fields"]), d["explained"]) for d in body["differences"]] == [
        (score_id, ["score"], False)
    ]
    assert "Audited 2 stored scores" in done.stdout and "1 unexplained" in done.stdout
    assert done.stderr == ""  # no progress bar without a terminal


def test_production_still_refuses_what_the_audit_needs_and_other_commands_keep_the_full_refusal(tmp_path):
    env = production_env("postgresql://nobody@127.0.0.1:9/none")
    no_issuers = command_line({**env, "TRUSTED_IAM_ISSUERS": "[]"})
    assert no_issuers.returncode == 2 and no_issuers.stderr.count("\n") == 1
    assert no_issuers.stderr.startswith("ImproperlyConfigured: Refusing to start in production mode: TRUSTED_IAM")
    assert "SECRET_KEY" not in no_issuers.stderr and "CGRANTS_API_TOKEN" not in no_issuers.stderr
    other = subprocess.run(
        [sys.executable, "manage.py", "bootstrap_db"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert other.returncode == 2
    for problem in ("SECRET_KEY", "ALLOWED_HOSTS", "CGRANTS_API_TOKEN", "CERAMIC_CACHE_SCORER_ID"):
        assert problem in other.stderr, problem


def test_the_command_line_refuses_bad_arguments_and_a_missing_database_in_one_line(community, reader_url):
    env = production_env(reader_url)
    refused = command_line(env, "--address", "nope")
    assert (refused.returncode, refused.stderr) == (2, "CommandError: --address: malformed address 'nope'\n")
    unreachable = command_line({**env, "DATABASE_URL": "postgresql://audit_reader@127.0.0.1:9/none"})
    assert unreachable.returncode == 2 and "Traceback" not in unreachable.stderr
    assert unreachable.stderr.startswith("CommandError: database unreachable: ") and unreachable.stderr.count("\n") == 1


# --- end to end: scorer_fast's own routes write a scenario, the audit finds nothing --------------------------------


def bulk(client, method: str, address: str, body: list) -> None:
    response = getattr(client, method)(
        "/ceramic-cache/stamps/bulk",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {rs256_token(address)}",
    )
    assert response.status_code in (200, 201), response.content


def customized(owner, weights: dict) -> tuple:
    """A WEIGHTED community whose customization overrides weights: an allow list and a custom credential."""
    community = factories.community(owner=owner, weights=weights, threshold="1", scorer_type="WEIGHTED")
    customization = factories.allow_list_customization(community, list_name="vips", weight="10.0000")
    platform = CustomPlatform.objects.create(platform_type="DEVEL", name="devel", is_evm=False)
    ruleset = CustomCredentialRuleset.objects.create(
        credential_type="DEVEL", definition={}, name="contributor", provider_id="DeveloperList#contributor"
    )
    CustomCredential.objects.create(
        weight="2.5000", display_name="contributor", customization=customization, platform=platform, ruleset=ruleset
    )
    return community


def test_a_scenario_scored_by_scorer_fast_audits_equal_until_rows_are_changed_by_hand(
    committed_db, client, settings, tmp_path
):
    settings.SIWE_JWT_PUBLIC_KEY = RSA_PUBLIC_PEM
    owner = factories.account()
    key = factories.api_key(owner)
    binary = factories.community(owner=owner, weights={"Google": 12.5, "Ens": 7.5, "Github": 1}, threshold="20")
    settings.CERAMIC_CACHE_SCORER_ID = binary.id
    weighted = customized(owner, {"Google": 0.525, "AllowList#vips": 1, "Ens": 0.208})
    one_human = ["v0:one-human"]
    bulk(client, "post", A, [{"provider": p, "stamp": signed_stamp(A, p)} for p in ("Ens", "Github")])
    bulk(client, "post", A, [{"provider": "Google", "stamp": signed_stamp(A, "Google", nullifiers=one_human)}])
    bulk(client, "post", B, [{"provider": "Google", "stamp": signed_stamp(B, "Google", nullifiers=one_human)}])
    bulk(client, "delete", A, [{"provider": "Github"}])
    bulk(client, "patch", A, [{"provider": "Ens", "stamp": signed_stamp(A, "Ens", days_valid=10)}])
    for provider in ("AllowList#vips", "DeveloperList#contributor"):
        bulk(client, "post", C, [{"provider": provider, "stamp": signed_stamp(C, provider)}])
    for address in (A, B, C):
        response = client.get(f"/v2/stamps/{weighted.id}/score/{address}", HTTP_X_API_KEY=key)
        assert response.status_code == 200
    assert client.get(f"/v2/stamps/{weighted.id}/score/{B}", HTTP_X_API_KEY=key).json()["stamps"]["Google"]["dedup"]
    assert Score.objects.count() == 6

    status, report, _ = audit(tmp_path)
    assert (status, report) == (0, {"audited": 6, "equal": 6, "skipped": {}, "differences": []})

    touched = Score.objects.get(passport__address=C, passport__community_id=binary.id)
    Score.objects.filter(id=touched.id).update(expiration_date=touched.expiration_date + timedelta(hours=1))
    WeightedScorer.objects.filter(scorer_ptr_id=weighted.scorer_id).update(
        weights={"Google": 0.525, "AllowList#vips": 1, "Ens": 0.3}
    )
    status, report, _ = audit(tmp_path)
    listed = {(d["score_id"], d["explained"]) for d in report["differences"]}
    a_weighted = Score.objects.get(passport__address=A, passport__community_id=weighted.id).id
    assert status == 1 and listed == {(touched.id, False), (a_weighted, False)}


def test_a_terminal_gets_a_progress_bar(community, reader_url):
    scored_with_two_stamps(community)
    terminal, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    try:
        done = subprocess.run(
            [sys.executable, "manage.py", "audit_scores"],
            env=production_env(reader_url),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=side,
            text=True,
            timeout=120,
        )
        os.close(side)
        shown = b""
        while chunk := _read(terminal):
            shown += chunk
    finally:
        os.close(terminal)
    assert done.returncode == 0 and b"1/1" in shown and b"score" in shown


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the other side is closed and everything was read
        return b""
