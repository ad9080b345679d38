"""Review of the database layer's second performance phase: interleavings with a second writer (the original
service, which takes none of our advisory locks) that the combined statements must survive."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError, close_old_connections, connection
from django.test import Client

from scorer_fast.db import sql
from scorer_fast.models import HashScorerLink, Passport, Score
from scorer_fast.services import scoring
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import INTERNAL_AUTH, Background, foreign_writer, wait_until_blocked_by

A = "0x" + "a" * 40


def registry_stamp_providers(passport_id: int) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT provider FROM registry_stamp WHERE passport_id = %s ORDER BY id", [passport_id])
        return [provider for (provider,) in cursor.fetchall()]


def test_registry_stamps_rewritten_by_the_original_after_our_snapshot_are_replaced(committed_db):
    """Our snapshot reads registry_stamp = [Google] (what we will keep), then our link refresh waits on the
    original, which rewrites the passport's registry stamps and refreshes the same link, and commits. Our final
    write must leave registry_stamp holding the stamps of the score it writes, as the DELETE + INSERT did."""
    community = factories.community(weights={"Google": 1, "Ens": 1}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:a"]))
    url = f"/internal/score/v2/{community.id}/{A}"
    assert Client().get(url, **INTERNAL_AUTH).status_code == 200
    passport = Passport.objects.get()
    assert registry_stamp_providers(passport.id) == ["Google"]
    HashScorerLink.objects.update(expires_at=datetime.now(UTC) - timedelta(days=1))  # our rescore refreshes it

    with foreign_writer() as original:
        original.execute(
            "UPDATE registry_hashscorerlink SET expires_at = %s WHERE hash = 'v0:a'",
            [datetime.now(UTC) + timedelta(days=3)],
        )
        original.execute("DELETE FROM registry_stamp WHERE passport_id = %s", [passport.id])
        original.execute(
            "INSERT INTO registry_stamp (passport_id, provider, credential) VALUES (%s, 'Ens', '{}')", [passport.id]
        )
        scoring = Background(lambda: Client().get(url, **INTERNAL_AUTH))
        wait_until_blocked_by(original)
        original.commit()
        response = scoring.result()

    assert response.status_code == 200 and response.json()["score"] == "1.00000"
    assert list(Score.objects.get().stamps) == ["Google"]
    assert registry_stamp_providers(passport.id) == ["Google"]


def test_registry_stamps_rewritten_while_our_final_write_waits_on_the_score_row(committed_db, monkeypatch):
    """The original service rescoring the same passport: it updates registry_score and rewrites registry_stamp
    after our snapshot, and commits while our final write waits on the score row's lock. Our UPDATE then proceeds
    on the new score row (READ COMMITTED re-check), but the probe in the same statement reads registry_stamp with
    the statement's snapshot, taken before the wait: it still sees the old row versions and does not fire."""
    community = factories.community(weights={"Google": 1, "Ens": 1}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    url = f"/internal/score/v2/{community.id}/{A}"
    assert Client().get(url, **INTERNAL_AUTH).status_code == 200  # cold: writes registry_stamp
    assert Client().get(url, **INTERNAL_AUTH).status_code == 200  # warm: left alone, probe path
    passport = Passport.objects.get()
    assert registry_stamp_providers(passport.id) == ["Google"]

    with foreign_writer() as original:
        real_compute = scoring.compute_score
        fired = threading.Event()

        def compute_then_let_the_original_write(**kwargs):
            if not fired.is_set():  # after our snapshot, before our final write (once: a retry must see its rows)
                fired.set()
                original.execute(
                    "UPDATE registry_score SET status = 'PROCESSING' WHERE passport_id = %s", [passport.id]
                )
                original.execute("DELETE FROM registry_stamp WHERE passport_id = %s", [passport.id])
                original.execute(
                    "INSERT INTO registry_stamp (passport_id, provider, credential) VALUES (%s, 'Ens', '{}')",
                    [passport.id],
                )
            return real_compute(**kwargs)

        monkeypatch.setattr(scoring, "compute_score", compute_then_let_the_original_write)
        scoring_request = Background(lambda: Client().get(url, **INTERNAL_AUTH))
        wait_until_blocked_by(original)  # our final write waits on the score row
        original.commit()
        response = scoring_request.result()

    assert response.status_code == 200, response.content
    # registry_stamp holds the stamps of the score written last (ours: the original's commit came first)
    assert list(Score.objects.get().stamps) == ["Google"] and registry_stamp_providers(passport.id) == ["Google"]


def test_a_stamp_deleted_while_we_wait_for_the_address_lock_is_not_scored(committed_db):
    """The community and the live stamps are read (and their proofs checked) before the lock; another of our
    workers, holding the lock, soft-deletes the stamp and commits. Scoring reads the stamps again under the lock:
    the deleted stamp neither counts nor keeps a link."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Google", nullifiers=["v0:a"]))
    url = f"/internal/score/v2/{community.id}/{A}"

    with foreign_writer() as worker:
        worker.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ["scorer_fast:address:" + A])
        worker.execute("UPDATE ceramic_cache_ceramiccache SET deleted_at = now() WHERE address = %s", [A])
        scoring = Background(lambda: Client().get(url, **INTERNAL_AUTH))
        wait_until_blocked_by(worker)
        worker.commit()
        response = scoring.result()

    assert response.status_code == 200, response.content
    assert response.json()["score"] == "0.00000" and response.json()["stamps"] == {}
    assert not HashScorerLink.objects.exists()


def test_the_reused_cursor_is_per_thread_and_survives_a_killed_connection(committed_db):
    """Each worker thread has its own connection and so its own cursor; a connection the server killed fails
    one statement, is dropped at the request's end, and the next statement runs on a new connection and cursor."""
    ours = sql.cursor()
    other = Background(lambda: (sql.cursor(), sql.one("SELECT pg_backend_pid()")))
    other_cursor, other_pid = other.result()
    assert other_cursor is not ours and other_pid != sql.one("SELECT pg_backend_pid()")

    with foreign_writer() as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", [sql.one("SELECT pg_backend_pid()")[0]])
        killer.commit()
    with pytest.raises(OperationalError):
        sql.one("SELECT 1")
    close_old_connections()  # what Django runs when the request ends
    assert sql.one("SELECT 1") == (1,) and sql.cursor() is not ours


def test_the_registry_stamp_probe_sees_a_row_deleted_added_or_changed_since_the_snapshot(committed_db):
    """Committed rows (each statement its own transaction): an UPDATE inside the transaction that wrote a row keeps
    its xmin, but the probe only ever compares versions other transactions committed."""
    from scorer_fast.db import scores
    from scorer_fast.models import Stamp

    passport = Passport.objects.create(address=A, community=factories.community(weights={"Google": 1}))
    for provider in ("Google", "Ens"):
        Stamp.objects.create(passport=passport, provider=provider, credential={})
    versions_query = "SELECT ARRAY(SELECT id || '.' || xmin FROM registry_stamp WHERE passport_id = %s ORDER BY id)"
    (versions,) = sql.one(versions_query, [passport.id])

    def replaced(probed: list[str] = versions) -> bool:
        try:
            sql.execute_together([], unless=scores.stamps_replaced_since(passport.id, probed))
        except sql.ProbeFound:
            return True
        return False

    assert len(versions) == 2 and replaced() is False
    Stamp.objects.create(passport=passport, provider="Github", credential={})
    assert replaced() is True
    Stamp.objects.filter(provider="Github").delete()
    assert replaced() is False
    Stamp.objects.filter(provider="Ens").update(credential={"changed": True})  # same id, new row version
    assert replaced() is True
    Stamp.objects.filter(provider="Ens").delete()
    assert replaced() is True
    Stamp.objects.filter(passport=passport).delete()
    assert replaced([]) is False  # none, none
