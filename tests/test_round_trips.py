"""The statements a warm score sends (issue 11): what each round trip carries, not how long it takes."""

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scorer_fast.db import scores, sql
from scorer_fast.db.postgresql.base import Opener
from scorer_fast.db.scores import ScoringSnapshot, StoredStamps
from scorer_fast.domain import proofs
from scorer_fast.domain.credentials import CachedStamp
from scorer_fast.models import CeramicCache, Event, HashScorerLink, Revocation, Score, Stamp
from scorer_fast.services import scoring, seen_stamps
from settings.database import database_from_url
from tests import factories, pooler
from tests.credentials import signed_stamp
from tests.helpers import INTERNAL_AUTH, Background, foreign_writer, wait_until_blocked_by

A, B = "0x" + "a" * 40, "0x" + "b" * 40
PROVIDERS = ["Google", "Ens", "Github"]


@pytest.fixture
def production_flags(settings):
    settings.HUMAN_POINTS_ENABLED = True
    settings.HUMAN_POINTS_WRITE_ENABLED = True
    settings.HUMAN_POINTS_START_TIMESTAMP = 0
    settings.FF_API_ANALYTICS = True
    return settings


def statements(capture: CaptureQueriesContext) -> list[str]:
    """The messages sent, in order. Django logs a transaction's "BEGIN" when it opens one; our backend sends it in
    the message of the transaction's first statement (scorer_fast/db/postgresql/base.py), so that log line is not a
    message of its own."""
    sent = [" ".join(query["sql"].split()) for query in capture.captured_queries]
    return [
        text
        for text, after in zip(sent, [*sent[1:], ""], strict=True)
        if not (text == "BEGIN" and after.startswith("BEGIN;"))
    ]


def test_a_warm_v2_score_with_every_production_flag_is_three_round_trips(committed_db, production_flags, client):
    owner = factories.account()
    community = factories.community(
        owner=owner, weights={p: 2 for p in PROVIDERS}, threshold="1", human_points_program=True
    )
    key = factories.api_key(owner)
    for provider in PROVIDERS:
        factories.cache_stamp(A, signed_stamp(A, provider))
    url = f"/v2/stamps/{community.id}/score/{A}"
    assert client.get(url, HTTP_X_API_KEY=key).status_code == 200  # cold: writes the links and registry stamps
    assert client.get(url, HTTP_X_API_KEY=key).status_code == 200  # warm: learns what registry_stamp's rows hold

    with CaptureQueriesContext(connection) as capture:
        response = client.get(url, HTTP_X_API_KEY=key)

    assert response.status_code == 200 and response.json()["passing_score"] is True
    sent = statements(capture)
    expected_starts = [
        # the API key and the scorer setup come from the worker's caches (tests/test_worker_caches.py), the live
        # stamps are guessed: the ones this worker read last time, checked under the lock. One message: BEGIN, the
        # lock with the transaction's timeouts, then passport and score ids (no upserts: the rows exist), the live
        # stamps' versions only, registry stamps' versions only, links, points rows
        "BEGIN; SELECT pg_try_advisory_xact_lock(",
        "WITH w0 AS ( UPDATE registry_score",  # every write after scoring, and the COMMIT
        # the usage row, after the commit, without waiting for its WAL flush
        "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)) "
        "INSERT INTO account_accountapikeyanalytics",
    ]
    assert len(sent) == len(expected_starts), sent
    for statement, start in zip(sent, expected_starts, strict=True):
        assert statement.startswith(start), (start, statement[:120])
    snapshot = sent[0]
    assert "; SELECT p.id AS passport_id, s.id AS score_id" in snapshot
    assert "ARRAY[t.provider, t.stamp" not in snapshot and "jsonb_array_elements" not in snapshot  # versions only
    assert "AS stored_versions" in snapshot and "sha256" not in snapshot and "r.credential" not in snapshot
    final_write = sent[1]
    assert "UPDATE registry_score" in final_write and "INSERT INTO registry_event" in final_write
    assert final_write.endswith("; COMMIT")
    # the address is a qualified user here already (the snapshot says so): no insert that would do nothing
    assert "registry_humanpointscommunityqualifiedusers" not in final_write
    # unchanged registry stamps are left alone, only checked for a rewrite by another writer in the same statement
    assert "DELETE FROM registry_stamp" not in final_write and "INSERT INTO registry_stamp" not in final_write
    # the check, a statement of its own after the write (its own snapshot): it fails the transaction, run again
    assert "SELECT 1; SELECT CAST(CASE WHEN EXISTS (SELECT 1 WHERE ARRAY(SELECT id::text || '.' || xmin::text" in (
        final_write
    )
    with connection.cursor() as cursor:  # the usage row's setting ended with its own transaction
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)


def test_a_cold_worker_reads_key_and_setup_with_the_stamps(committed_db, production_flags, client):
    """Nothing cached yet: the API key, then the community with its setup and the live stamps in one statement."""
    owner = factories.account()
    community = factories.community(owner=owner, weights={p: 2 for p in PROVIDERS}, threshold="1")
    key = factories.api_key(owner)
    factories.cache_stamp(A, signed_stamp(A, "Google"))

    with CaptureQueriesContext(connection) as capture:
        assert client.get(f"/v2/stamps/{community.id}/score/{A}", HTTP_X_API_KEY=key).status_code == 200

    sent = statements(capture)
    assert sent[0].startswith("SELECT id, account_id, hashed_key") and sent[1].startswith("SELECT c.id, c.account_id")


def _change_after_the_read_ahead(monkeypatch, change):
    """Run `change` (another writer, committed) between the stamps read before the transaction and the lock."""
    real = scoring.check_proofs_ahead

    def then_change(*args, **kwargs):
        proofs = real(*args, **kwargs)
        change()
        return proofs

    monkeypatch.setattr(scoring, "check_proofs_ahead", then_change)


@pytest.mark.parametrize("change", ["soft_delete", "update_in_place", "revoke"])
def test_stamps_changed_after_the_read_ahead_are_read_again_under_the_lock(committed_db, client, monkeypatch, change):
    """The statement under the lock compares the live rows' versions (id and xmin) with the stamps read ahead; when
    another writer changed them in between, the stamps are read again under the lock and scoring uses those."""
    community = factories.community(weights={"Google": 1, "Ens": 2}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    ens = factories.cache_stamp(A, signed_stamp(A, "Ens"))
    url = f"/internal/score/v2/{community.id}/{A}"
    assert client.get(url, **INTERNAL_AUTH).json()["score"] == "3.00000"
    replacement = signed_stamp(A, "Ens", nullifiers=["v0:replaced"])

    def apply() -> None:
        if change == "soft_delete":
            CeramicCache.objects.filter(pk=ens.pk).update(deleted_at=datetime.now(UTC))
        elif change == "update_in_place":  # the same row (same id and updated_at), another credential
            CeramicCache.objects.filter(pk=ens.pk).update(stamp=replacement)
        else:
            Revocation.objects.create(proof_value=ens.proof_value, ceramic_cache_id=ens.pk)

    _change_after_the_read_ahead(monkeypatch, apply)
    seen_stamps.forget_all()  # the stamps are read ahead, not guessed (test_a_guess_the_live_rows_contradict…)
    with CaptureQueriesContext(connection) as capture:
        body = client.get(url, **INTERNAL_AUTH).json()

    sent = statements(capture)
    checked = [s for s in sent if "SELECT p.id AS passport_id, s.id AS score_id" in s]
    assert len(checked) == 1 and len([s for s in sent if s.startswith("WITH p_ins")]) == 1  # check, then full read
    if change == "update_in_place":
        assert body["score"] == "3.00000"
        stored = Stamp.objects.get(passport__address=A, provider="Ens").credential
        assert stored["credentialSubject"]["nullifiers"] == ["v0:replaced"]
        assert HashScorerLink.objects.filter(hash="v0:replaced", address=A).exists()
    else:
        assert body["score"] == "1.00000" and list(body["stamps"]) == ["Google"]
        assert list(Stamp.objects.filter(passport__address=A).values_list("provider", flat=True)) == ["Google"]


def test_a_rescore_keeps_a_deduplicated_stamp_without_touching_the_links(committed_db, client):
    """The links read with the stamps cover every nullifier they carry: a rescore that changes no link writes
    none (no savepoint, no failed insert and re-plan)."""
    community = factories.community(weights={"Google": 1, "Ens": 2}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:shared"]))
    factories.cache_stamp(B, signed_stamp(B, "Google", nullifiers=["v0:shared"]))
    factories.cache_stamp(B, signed_stamp(B, "Ens", nullifiers=["v0:ens-b"]))
    url = f"/internal/score/v2/{community.id}/{B}"
    assert client.get(f"/internal/score/v2/{community.id}/{A}", **INTERNAL_AUTH).status_code == 200
    assert client.get(url, **INTERNAL_AUTH).status_code == 200

    with CaptureQueriesContext(connection) as capture:
        body = client.get(url, **INTERNAL_AUTH).json()

    assert body["stamps"]["Google"]["dedup"] is True and body["stamps"]["Ens"]["dedup"] is False
    sent = statements(capture)
    snapshots = ("WITH p_ins", "SELECT p.id AS passport_id", "BEGIN; SELECT pg_try_advisory_xact_lock(")
    assert not [s for s in sent if "registry_hashscorerlink" in s and not s.startswith(snapshots)], sent
    assert not [s for s in sent if s.startswith("SAVEPOINT")], sent


def test_the_events_of_one_scoring_keep_their_order(committed_db, client):
    """LDP (written while de-duplicating) before SCU (the score), as the original writes them."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:shared"]))
    factories.cache_stamp(B, signed_stamp(B, "Google", nullifiers=["v0:shared"]))
    client.get(f"/internal/score/v2/{community.id}/{A}", **INTERNAL_AUTH)
    Event.objects.all().delete()

    client.get(f"/internal/score/v2/{community.id}/{B}", **INTERNAL_AUTH)

    assert list(Event.objects.order_by("id").values_list("action", flat=True)) == ["LDP", "SCU"]
    assert Score.objects.get(passport__address=B).status == "DONE"


@pytest.mark.django_db
def test_submitted_stamps_reach_didkit_once_before_the_transaction(client, monkeypatch):
    """A submitted credential is verified before the transaction; read back from jsonb under the lock (another
    text, keys reordered) it is found again, so didkit never runs while the lock is held."""
    community = factories.community(weights={"Google": 1, "Ens": 1}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Ens"))
    batches = []
    real = proofs._verify_documents

    async def counted(documents):
        batches.append(len(documents))
        return await real(documents)

    monkeypatch.setattr(proofs, "_verify_documents", counted)
    body = {"scorer_id": community.id, "stamps": [signed_stamp(A, "Google")]}

    response = client.post(f"/internal/embed/stamps/{A}", json.dumps(body), content_type="application/json")

    assert response.status_code == 200 and response.json()["score"]["score"] == "2.00000"
    assert batches == [2]  # the stored Ens stamp and the submitted Google stamp, together, once


def test_prepared_statements_are_an_opt_in_of_the_database_url():
    default = database_from_url("postgres://u:p@db.internal:5432/scorer", **URL_ARGS)["OPTIONS"]
    assert default["prepare_threshold"] is None and "server_side_binding" not in default
    opted = database_from_url("postgres://u@db/scorer?server_side_binding=true&prepare_threshold=5", **URL_ARGS)
    assert opted["OPTIONS"]["server_side_binding"] is True and opted["OPTIONS"]["prepare_threshold"] == 5
    off = database_from_url("postgres://u@db/scorer?server_side_binding=off&prepare_threshold=none", **URL_ARGS)
    assert off["OPTIONS"]["server_side_binding"] is False and off["OPTIONS"]["prepare_threshold"] is None


URL_ARGS = {"conn_max_age": 60, "connect_timeout": 3, "app_name": "scorer_fast"}


@dataclass(frozen=True)
class _Pair:
    a: int
    b: str


@pytest.mark.django_db
def test_rows_are_built_by_column_name_and_a_drifted_statement_fails_loudly():
    assert sql.fetch_one(_Pair, "SELECT 'x' AS b, 1 AS a") == _Pair(a=1, b="x")
    assert sql.fetch_all(_Pair, "SELECT 2 AS a, 'y' AS b UNION ALL SELECT 3, 'z'") == [_Pair(2, "y"), _Pair(3, "z")]
    with pytest.raises(TypeError, match="_Pair: the statement returns"):
        sql.fetch_one(_Pair, "SELECT 1 AS a, 'x' AS c")


@pytest.mark.skipif(pooler.requested(), reason="the backend behind a pooler is not the client's own")
def test_the_reused_cursor_follows_the_connection_it_belongs_to(committed_db):
    first = sql.cursor()
    assert sql.cursor() is first  # one cursor per connection, not per statement
    backend = sql.one("SELECT pg_backend_pid()")
    connection.close()  # as after CONN_MAX_AGE or a failed health check
    connection.ensure_connection()  # and reopened by another statement first

    assert sql.one("SELECT pg_backend_pid()") != backend  # a new connection, and a new cursor on it
    assert sql.cursor() is not first


@pytest.mark.django_db
def test_an_unknown_scorer_is_reported_before_an_invalid_address(client):
    """The community and the address's stamps are read in one statement, but the original's order of answers
    stays: the scorer lookup fails first."""
    owner = factories.account()
    key = factories.api_key(owner)
    v2 = client.get("/v2/stamps/999999/score/0x12", HTTP_X_API_KEY=key)
    internal = client.get("/internal/score/v2/999999/0x12", **INTERNAL_AUTH)
    embed = client.get("/internal/embed/score/999999/0x12")
    assert (v2.status_code, internal.status_code, embed.status_code) == (404, 404, 400)
    assert "scorer" in v2.content.decode().lower() and "community" in internal.content.decode().lower()
    assert "Invalid scorer_id" in embed.content.decode()
    community = factories.community(owner=owner)
    assert "Invalid address" in client.get(f"/v2/stamps/{community.id}/score/0x12", HTTP_X_API_KEY=key).content.decode()


def test_under_the_lock_unchanged_stamps_are_checked_again_for_expiry_only():
    """The stamps the lock's statement confirms unchanged keep the verdicts of the check before the transaction;
    only expiry, which depends on the time, is tested again: a stamp that expired in between no longer counts."""
    lasting = CachedStamp("Google", signed_stamp(A, "Google"))
    expiring = CachedStamp("Ens", signed_stamp(A, "Ens", days_valid=1 / 24))  # an hour from now
    proofs_ahead = scoring.check_proofs_ahead(A, stored=[lasting, expiring])
    assert proofs_ahead.unchanged_valid == [lasting, expiring]
    later = datetime.now(UTC) + timedelta(hours=2)

    def under_the_lock(stamps: list[CachedStamp], *, as_expected: bool) -> list[CachedStamp]:
        snapshot = ScoringSnapshot(1, 1, stamps, StoredStamps(0, []), [], {}, set(), 0, stamps_as_expected=as_expected)
        return scoring._valid_under_lock(A, snapshot, now=later, proofs=proofs_ahead)

    assert under_the_lock([lasting, expiring], as_expected=True) == [lasting]
    # read again under the lock (another writer changed the rows): the whole check runs on what was read
    other = CachedStamp("Github", signed_stamp(A, "Github"))
    assert under_the_lock([lasting, expiring, other], as_expected=False) == [lasting, other]


@pytest.mark.parametrize("change", ["added", "soft_deleted"])
def test_a_guess_the_live_rows_contradict_is_dropped_and_the_request_starts_over(committed_db, client, change):
    """The worker's guess of the live stamps (the ones it read last time) is checked under the lock; when another
    writer changed them since, nothing is written from it: the transaction is rolled back, the stamps read again
    and the score is that of the live rows."""
    community = factories.community(weights={"Google": 1, "Ens": 2}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    ens = factories.cache_stamp(A, signed_stamp(A, "Ens"))
    url = f"/internal/score/v2/{community.id}/{A}"
    assert client.get(url, **INTERNAL_AUTH).json()["score"] == "3.00000"  # read, then remembered
    if change == "added":
        factories.cache_stamp(A, signed_stamp(A, "Github"))
        expected_score, expected_stamps = "3.00000", ["Ens", "Github", "Google"]
    else:
        CeramicCache.objects.filter(pk=ens.pk).update(deleted_at=datetime.now(UTC))
        expected_score, expected_stamps = "1.00000", ["Google"]
    events_before = Event.objects.count()

    with CaptureQueriesContext(connection) as capture:
        body = client.get(url, **INTERNAL_AUTH).json()

    assert body["score"] == expected_score and sorted(body["stamps"]) == expected_stamps
    sent = statements(capture)
    # the lock and the check of the guess, then nothing more: no upserts (not even a sequence value is used up)
    starts = [
        "BEGIN; SELECT pg_try_advisory_xact_lock(",  # with the check of the guess in the same message
        "ROLLBACK",
        "SELECT ARRAY(SELECT ARRAY[t.provider",
    ]
    assert [s[: len(start)] for s, start in zip(sent, starts, strict=False)] == starts, sent[:5]
    assert Event.objects.count() == events_before + 1  # one SCU: the dropped attempt wrote nothing
    with CaptureQueriesContext(connection) as capture:  # the fresh read is the next guess
        assert client.get(url, **INTERNAL_AUTH).json()["score"] == expected_score
    assert not [s for s in statements(capture) if s.startswith(("WITH p_ins", "SELECT ARRAY(SELECT ARRAY[t.provider"))]


def test_a_read_sent_with_a_refused_lock_is_read_again_once_the_lock_is_granted(committed_db, client):
    """The checked read travels with the opener, whose lock may be taken by another request: that read's snapshot
    predates the holder's commit, so once the lock is granted it is sent again and sees what the holder wrote
    (here: a stamp deleted while the request waited, which the stale read would still have counted)."""
    community = factories.community(weights={"Google": 1, "Ens": 2}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    ens = factories.cache_stamp(A, signed_stamp(A, "Ens"))
    url = f"/internal/score/v2/{community.id}/{A}"
    assert client.get(url, **INTERNAL_AUTH).json()["score"] == "3.00000"  # read, then remembered as the guess
    with foreign_writer() as holder:
        holder.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ["scorer_fast:address:" + A])
        waiting = Background(lambda: client.get(url, **INTERNAL_AUTH).json())
        wait_until_blocked_by(holder)
        holder.execute("UPDATE ceramic_cache_ceramiccache SET deleted_at = now() WHERE id = %s", [ens.pk])
        holder.commit()
        body = waiting.result()
    assert body["score"] == "1.00000" and list(body["stamps"]) == ["Google"]
    # the lock was just contended: for a while the read goes after the opener, so a refusal cannot make it run twice
    with CaptureQueriesContext(connection) as capture:
        assert client.get(url, **INTERNAL_AUTH).json()["score"] == "1.00000"
    reads = [statement for statement in statements(capture) if "AS passport_id" in statement]
    assert len(reads) == 1 and reads[0].startswith("SELECT p.id AS passport_id"), reads


@pytest.mark.parametrize("contended_before", [False, True], ids=["read-with-opener", "read-after-opener"])
def test_the_wait_for_a_refused_lock_and_the_read_after_it_are_one_message(committed_db, client, contended_before):
    """Refused by the opener, the lock is waited for in the same message as the read that follows it (the read is
    a statement of its own there, so its snapshot still comes after the wait): the waiting backend's query is both.
    A stamp the holder deletes meanwhile is not counted."""
    community = factories.community(weights={"Google": 1, "Ens": 2}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    ens = factories.cache_stamp(A, signed_stamp(A, "Ens"))
    url = f"/internal/score/v2/{community.id}/{A}"
    assert client.get(url, **INTERNAL_AUTH).json()["score"] == "3.00000"  # read, then remembered as the guess
    connection.forget_contention()
    if contended_before:
        connection._mark_contended(scores_opener_key(A))
    with foreign_writer() as holder:
        holder.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ["scorer_fast:address:" + A])
        waiting = Background(lambda: client.get(url, **INTERNAL_AUTH).json())
        wait_until_blocked_by(holder)
        (waiting_query,) = holder.execute(
            "SELECT query FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [holder.info.backend_pid]
        ).fetchone()
        holder.execute("UPDATE ceramic_cache_ceramiccache SET deleted_at = now() WHERE id = %s", [ens.pk])
        holder.commit()
        body = waiting.result()

    assert waiting_query.startswith("SELECT pg_advisory_xact_lock(hashtextextended('scorer_fast:address:")
    assert "AS passport_id" in waiting_query
    assert body["score"] == "1.00000" and list(body["stamps"]) == ["Google"]


def scores_opener_key(address: str) -> Opener:
    return Opener("SELECT true", key=scores.lock_key(address))


def test_the_checked_read_compares_registry_stamps_by_digest_then_by_row_versions(committed_db, client):
    """The warm read sends a digest of registry_stamp's texts, not the texts: equal rows are left alone, and then
    the worker knows what those row versions hold, so the next read sends the versions only. A row changed in place
    (by hand here) has a new version: it is rewritten, and the read after that goes back to the digest."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    stamp = signed_stamp(A, "Google")
    factories.cache_stamp(A, stamp)
    url = f"/internal/score/v2/{community.id}/{A}"

    def opening_of_a_score() -> str:
        with CaptureQueriesContext(connection) as capture:
            assert client.get(url, **INTERNAL_AUTH).status_code == 200
        return statements(capture)[0]

    opening_of_a_score()  # cold: writes registry_stamp
    kept_id = Stamp.objects.get().pk
    assert "AS stored_digest" in opening_of_a_score() and Stamp.objects.get().pk == kept_id  # unchanged: left alone
    by_versions = opening_of_a_score()
    assert "sha256" not in by_versions and "AS stored_versions" in by_versions and Stamp.objects.get().pk == kept_id
    Stamp.objects.update(credential={**stamp, "issuanceDate": "2020-01-01T00:00:00.000Z"})

    assert "sha256" not in opening_of_a_score()
    assert [row.credential for row in Stamp.objects.all()] == [stamp] and Stamp.objects.get().pk != kept_id
    assert "sha256" in opening_of_a_score()  # the rows this request wrote: their versions are not known


def test_a_read_cut_at_the_deadline_by_a_table_lock_goes_after_the_opener_next_time(committed_db, client):
    """The read that travels with the opener is under the database-unavailable deadline. A table lock held longer
    (DDL, VACUUM FULL) makes that first request a 503; the address's next reads go after the opener, where the wait
    is bounded by lock_timeout only, as before the folding (docs/decisions.md)."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    url = f"/internal/score/v2/{community.id}/{A}"
    assert client.get(url, **INTERNAL_AUTH).status_code == 200  # cold: rows written, stamps remembered
    configured = connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"]
    connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"] = 0.5
    try:
        with foreign_writer() as holder:
            holder.execute("LOCK TABLE registry_hashscorerlink IN ACCESS EXCLUSIVE MODE")
            assert client.get(url, **INTERNAL_AUTH).status_code == 503
            waiting = Background(lambda: client.get(url, **INTERNAL_AUTH))
            wait_until_blocked_by(holder)
            time.sleep(1.0)  # longer than the deadline
            holder.commit()
            response = waiting.result()
    finally:
        connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"] = configured
    assert response.status_code == 200 and response.json()["score"] == "1.00000"
