"""Through pgbouncer in transaction mode (pool of 3, server_login_retry = 1 s; tests/pooler.py), as production runs
behind RDS Proxy: every route leaves no session state on the pooled server connections, and while the database
refuses connections every request is answered 503 within the bound (DB_UNAVAILABLE_AFTER_SECONDS) instead of
waiting in the pooler's queue, then served again as soon as the pooler reconnects.

The tests that need the pooler (the `pgbouncer` fixture) run in scripts/test's pooled pass (SCORER_POOLER=pgbouncer)
and are skipped in the direct passes. Figures are printed (`pytest -s`; docs/deploy.md lists them); the bounds
asserted leave room for a loaded 2-core machine.
"""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import psycopg
import pytest
from django.db import connection

from scorer_fast import lambda_handler
from scorer_fast.http import error_key
from tests import pooler
from tests.conftest import forget_worker_caches
from tests.helpers import INTERNAL_AUTH, Background, foreign_writer, wait_until_blocked_by
from tests.lambda_events import HttpRequest, event, response_body
from tests.test_integrity import run_concurrently
from tests.test_lambda_handler import routes, through_client, through_wsgi, world  # noqa: F401  (world: the routes' fixture)

OUTAGE_SECONDS = 3.0
# Requests answered without the database (bad JSON, CORS, an unknown path) and /health (its own body). A
# submit-passport without a scorer needs its API key read first: a cold worker's is a 503.
NO_DATABASE = {"embed-post-bad-json", "not-found", "cors-preflight", "health"}
INTERNAL_TOKEN = ("Authorization", INTERNAL_AUTH["HTTP_AUTHORIZATION"])
UNAVAILABLE = "Database unavailable."
A = "0x" + "a" * 40  # the address of the routes' v2 score


def direct(dbname: str = "postgres") -> psycopg.Connection:
    params = pooler.direct_params()
    assert params is not None
    kwargs = {"host": params["HOST"], "user": params["USER"], "password": params["PASSWORD"], "dbname": dbname}
    if params["PORT"]:
        kwargs["port"] = params["PORT"]
    return psycopg.connect(**kwargs, autocommit=True)


def through_lambda(request: HttpRequest) -> tuple[int, dict[str, str], bytes]:
    response = lambda_handler.handler(event(request, "alb"), None)
    return response["statusCode"], {}, response_body(response)


def timed(send, request: HttpRequest) -> tuple[int, dict, float]:
    started = time.monotonic()
    status, _, body = send(request)
    return status, json.loads(body) if body else {}, time.monotonic() - started


@contextmanager
def logins_refused(dbname: str) -> Iterator[None]:
    """The database refuses new connections and its sessions are ended (a failover, a restart, a full
    max_connections): what the pooler's server connections see."""
    with direct() as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [dbname],
            )
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')


def server_sessions(pgbouncer: pooler.Pgbouncer) -> list[tuple]:
    """What each of the pool's server connections carries from earlier clients: three transactions held open at
    once through the pooler land on its three server connections."""
    clients = [
        psycopg.connect(
            host="127.0.0.1",
            port=pgbouncer.port,
            dbname=connection.settings_dict["NAME"],
            user=connection.settings_dict["USER"],
            prepare_threshold=None,
        )  # fmt: skip
        for _ in range(pooler.POOL_SIZE)
    ]
    try:
        return [
            client.execute(
                "SELECT pg_backend_pid(), current_setting('statement_timeout'), current_setting('lock_timeout'), "
                "current_setting('synchronous_commit'), (SELECT count(*) FROM pg_prepared_statements), "
                "(SELECT count(*) FROM pg_cursors), (SELECT count(*) FROM pg_listening_channels()), "
                "(SELECT count(*) FROM pg_class WHERE relpersistence = 't')"
            ).fetchone()
            for client in clients
        ]
    finally:
        for client in clients:
            client.close()


def advisory_locks(dbname: str) -> int:
    with direct() as observer:
        row = observer.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = %s",
            [dbname],
        ).fetchone()
        return row[0] if row else 0


def test_every_route_through_the_pooler_leaves_no_session_state(committed_db, pgbouncer, world):  # noqa: F811
    requests = routes(world)
    through_client(requests["v2-score-rate-limited"])  # its 1/h used up: 429 from here on, in every run
    answers = {}
    for name, request in requests.items():
        answers[name] = through_client(request)[0]
        assert advisory_locks(connection.settings_dict["NAME"]) == 0, name  # the address lock ends with its commit
    assert {name: status for name, status in answers.items() if status >= 500} == {}
    # The same requests from 8 clients at once over the 3 server connections: each transaction may land on another.
    concurrent = run_concurrently(8, lambda i: [through_client(request)[0] for request in requests.values()])
    # The same answers, but for a delete another client may have done first.
    allowed = {name: {status} for name, status in answers.items()} | {"ceramic-bulk-delete": {200, 404}}
    unexpected = [
        (name, status)
        for run in concurrent
        for name, status in zip(answers, run, strict=True)
        if status not in allowed[name]
    ]
    assert unexpected == []
    sessions = server_sessions(pgbouncer)
    assert len({pid for pid, *_ in sessions}) == pooler.POOL_SIZE
    defaults = ("0", "0", "on", 0, 0, 0, 0)  # no timeout, prepared statement, cursor, LISTEN or temp table left
    assert [tuple(session[1:]) for session in sessions] == [defaults] * pooler.POOL_SIZE


@pytest.mark.parametrize("ping_on_reuse", [False, True], ids=["first-statement", "reuse-ping"])
def test_while_the_database_refuses_connections_every_request_is_a_503_within_the_bound(
    committed_db,
    pgbouncer,
    world,  # noqa: F811
    ping_on_reuse,
):
    requests = {name: request for name, request in routes(world).items() if name not in NO_DATABASE}
    internal = requests["internal-score"]  # with its token, so it gets as far as the database
    requests["internal-score"] = replace(internal, headers=[*internal.headers, INTERNAL_TOKEN])
    bound = connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"]
    probe = requests["v2-score"]
    dbname = connection.settings_dict["NAME"]
    configured = connection.settings_dict["HEALTH_CHECK_IDLE_SECONDS"]
    connection.settings_dict["HEALTH_CHECK_IDLE_SECONDS"] = 0 if ping_on_reuse else 60
    no_database = {name: r for name, r in routes(world).items() if name in NO_DATABASE and name != "health"}
    try:
        assert timed(through_wsgi, probe)[0] == 200  # a warm connection to the pooler, as a busy worker has
        usual = {name: timed(through_wsgi, request)[:2] for name, request in no_database.items()}
        forget_worker_caches()  # a cold worker: no API key or scorer setup to answer from without the database
        with logins_refused(dbname):
            refused_at = time.monotonic()
            during = [("wsgi", name, *timed(through_wsgi, request)) for name, request in requests.items()]
            # Every route at once from fresh worker threads, through the WSGI app and the Lambda handler.
            during += run_concurrently(
                len(requests) * 2,
                lambda i: (
                    "lambda" if i % 2 else "wsgi",
                    list(requests)[i // 2],
                    *timed(through_lambda if i % 2 else through_wsgi, list(requests.values())[i // 2]),
                ),
            )
            during.append(("wsgi", "health", *timed(through_wsgi, routes(world)["health"])))
            # Requests that need no database are answered as usual, and as fast.
            unaffected = {name: timed(through_wsgi, request) for name, request in no_database.items()}
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - refused_at)))
        back_at = time.monotonic()
        after = []
        while time.monotonic() - back_at < 10:
            after.append((time.monotonic() - back_at, *timed(through_wsgi, probe)))
            if after[-1][1] == 200:
                break
            time.sleep(0.05)
    finally:
        connection.settings_dict["HEALTH_CHECK_IDLE_SECONDS"] = configured
    slowest = max(seconds for *_, seconds in during)
    print(
        f"\npooled outage ({'reuse ping' if ping_on_reuse else 'first statement'}): {len(during)} requests, "
        f"slowest 503 {slowest:.2f} s (bound {bound} s); first 200 {after[-1][0]:.2f} s after the database was back"
    )
    unexpected = [
        (via, name, status, body)
        for via, name, status, body, _ in during
        if (status, body)
        != (
            (503, {"status": "unavailable", "database": "unreachable"})
            if name == "health"
            else (503, {error_key(requests[name].path): UNAVAILABLE})
        )
    ]
    assert unexpected == [], "\n".join(map(str, unexpected))
    assert slowest <= bound + 0.5, [entry for entry in during if entry[-1] > bound + 0.5]
    assert {name: answer[:2] for name, answer in unaffected.items()} == usual
    assert max(seconds for *_, seconds in unaffected.values()) < 0.5
    # The pooler retries its login every server_login_retry; the first request after that is served within 1 s.
    assert after[-1][1] == 200, after
    assert after[-1][0] <= pooler.LOGIN_RETRY_SECONDS + 1.0, after


def test_a_request_waiting_on_another_requests_address_lock_is_not_cut_at_the_bound(committed_db, world):  # noqa: F811
    """The bound is on waiting for a server, not on the transaction: a durable transaction's opening statement
    never waits on a lock, so a wait for the address lock longer than the bound is still answered 200 (directly
    and through the pooler)."""
    configured = connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"]
    connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"] = 0.5
    try:
        with foreign_writer() as holder:
            holder.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ["scorer_fast:address:" + A])
            waiting = Background(lambda: timed(through_client, routes(world)["v2-score"]))
            wait_until_blocked_by(holder)
            time.sleep(1.0)
            holder.commit()
            status, _, seconds = waiting.result()
    finally:
        connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"] = configured
    assert status == 200 and seconds >= 1.0


def test_outside_a_request_a_first_statement_longer_than_the_bound_is_not_cut(committed_db, client):
    """manage.py commands (the rollout audit's long reads) are no requests: their first answer has no deadline,
    on a fresh connection as on one a request used before."""
    configured = connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"]
    connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"] = 0.3
    try:
        assert client.get("/v2/nowhere").status_code == 404  # a request that never reached the database
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.6)")
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.6)")
    finally:
        connection.settings_dict["UNAVAILABLE_AFTER_SECONDS"] = configured
