"""All-or-nothing writes and concurrent writers, on real commits."""

import threading

from django.db import close_old_connections, connection
from django.test import Client

from scorer_fast.models import HashScorerLink, Score
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import INTERNAL_AUTH, count_rows, failing_event_inserts

A, B = "0x" + "a" * 40, "0x" + "b" * 40


def run_concurrently(count: int, target) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_a_database_error_mid_request_leaves_nothing_written(committed_db):
    community = factories.community(weights={"Google": 1})
    factories.cache_stamp(A, signed_stamp(A, "Google"))
    with failing_event_inserts():
        response = Client(raise_request_exception=False).get(f"/internal/score/v2/{community.id}/{A}", **INTERNAL_AUTH)
    assert response.status_code == 500 and response.json() == {"detail": "An error has occurred"}
    for table in ("registry_passport", "registry_score", "registry_stamp", "registry_hashscorerlink", "registry_event"):
        assert count_rows(table) == 0, table


def test_addresses_racing_for_one_nullifier_leave_exactly_one_holder(committed_db):
    community = factories.community(weights={"Google": 1})
    racers = [A, B] + [factories.address_of(n) for n in range(1, 5)]
    for address in racers:
        factories.cache_stamp(address, signed_stamp(address, "Google", nullifiers=["v0:contested"]))

    responses = run_concurrently(
        len(racers), lambda i: Client().get(f"/internal/score/v2/{community.id}/{racers[i]}", **INTERNAL_AUTH)
    )

    assert [response.status_code for response in responses] == [200] * len(racers)
    bodies = [response.json() for response in responses]
    winners = [body["address"] for body in bodies if body["score"] == "1.00000"]
    assert len(winners) == 1
    assert list(HashScorerLink.objects.values_list("hash", "address")) == [("v0:contested", winners[0])]
    losers = [body for body in bodies if body["address"] != winners[0]]
    assert all(body["stamps"]["Google"]["dedup"] is True and body["error"] is None for body in losers)


def test_concurrent_scoring_of_one_address_keeps_one_set_of_rows(committed_db):
    community = factories.community(weights={"Google": 1, "Ens": 1})
    for provider in ("Google", "Ens"):
        factories.cache_stamp(A, signed_stamp(A, provider))
    responses = run_concurrently(6, lambda i: Client().get(f"/internal/score/v2/{community.id}/{A}", **INTERNAL_AUTH))
    assert {response.status_code for response in responses} == {200}
    assert count_rows("registry_passport") == 1 and Score.objects.count() == 1
    assert count_rows("registry_stamp") == 2 and count_rows("registry_hashscorerlink") == 2
