"""Benchmark the routes under gunicorn as production runs it; prints latency percentiles, requests/second, CPU per
request of the workers and of PostgreSQL, round trips and address-lock hold time per request (from PostgreSQL's
statement log, embedded server only) and peak RSS per worker, with the production flags off and on side by side.
Usage: .venv/bin/python bench/run.py [--addresses 200] [--seconds 8] [--workers 2] [--flags both|on|off]
[--routes all|v2] [--prepared]

It uses DATABASE_URL when set, else the embedded server (own data folder .pgdata-bench); the database
`scorer_bench` is created anew each run. BENCH_PORT (default 8765) is the port gunicorn listens on.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import measure  # noqa: E402

os.environ.setdefault("PGSERVER_DATA", str(REPO / ".pgdata-bench"))
PORT = int(os.environ.get("BENCH_PORT", "8765"))
STAMPS_PER_ADDRESS = 10


def database_url(name: str = "scorer_bench") -> str:
    """A fresh database `name` on DATABASE_URL's server, else on the embedded one; its URL."""
    import psycopg

    from settings import embedded_pg

    base = os.environ.get("DATABASE_URL") or embedded_pg.ensure_running()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return url_of_database(base, name)


def url_of_database(url: str, name: str) -> str:
    """`url` with its database name replaced by `name` (query options kept)."""
    head, _, tail = url.partition("?")
    return head.rsplit("/", 1)[0] + f"/{name}" + ("?" + tail if tail else "")


def seed(env: dict, addresses: int) -> dict:
    """Bootstrap the schema and seed a scorer, a key and signed stamps, in a child process with Django set up."""
    code = f"""
import django, json, os, secrets
django.setup()
from datetime import UTC, datetime, timedelta
from django.core.management import call_command
call_command("bootstrap_db", verbosity=0)
from tests import factories
from demo.issuer import demo_issuer_jwk
from demo.signing import issue_stamp
from scorer_fast.models import AccountAPIKey, CeramicCache
RATE_LIMIT = "1000000000/15m"
jwk = demo_issuer_jwk()
owner = factories.account()
providers = [f"Provider{{i}}" for i in range({STAMPS_PER_ADDRESS})]
community = factories.community(
    owner=owner, weights={{p: 2.5 for p in providers}}, threshold="20", human_points_program=True
)
key = factories.api_key(owner)
# Limits high enough that the production-flags mode measures the rate-limit check, never a 429.
AccountAPIKey.objects.filter(prefix=key.split(".")[0]).update(
    rate_limit=RATE_LIMIT, embed_rate_limit=RATE_LIMIT
)
now = datetime.now(UTC).replace(microsecond=0)
rows, stamps = [], {{}}
for n in range({addresses}):
    address = "0x" + f"{{n + 1:040x}}"
    stamps[address] = []
    for provider in providers:
        credential = issue_stamp(
            jwk=jwk, address=address, provider=provider, issued=now, expires=now + timedelta(days=30)
        )
        stamps[address].append(credential)
        rows.append(CeramicCache(address=address, provider=provider, stamp=credential, created_at=now, updated_at=now,
            type=1, compose_db_save_status="", compose_db_stream_id="", proof_value=credential["proof"]["proofValue"]))
CeramicCache.objects.bulk_create(rows)
print(json.dumps({{"community": community.id, "key": key, "stamps": stamps}}))
os._exit(0)
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class Server:
    """One gunicorn with the production config (`gunicorn.conf.py`) on 127.0.0.1:`port` (bench/scale.py starts two)."""

    def __init__(self, env: dict, workers: int, port: int = PORT):
        self.port = port
        self.env = {**env, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": str(workers)}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "scorer_fast.wsgi:application"],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn on port {self.port} did not start")

    def worker_pids(self) -> list[int]:
        return measure.children(self.process.pid)

    def worker_peak_rss_mb(self) -> list[float]:
        return measure.peak_rss_mb(self.worker_pids())

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(20)


_local = threading.local()


def request(method: str, path: str, body: object = None, headers: dict | None = None) -> tuple[int, bytes]:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    payload = json.dumps(body) if body is not None else None
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (http.client.HTTPException, OSError):
        _local.conn = None
        raise


def run_clients(client: Callable[[], None], concurrency: int) -> float:
    """Run `concurrency` closed-loop clients on threads until each returns; the wall time in seconds."""
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def load(make_request, *, concurrency: int, seconds: float, max_requests: int | None = None) -> dict:
    """Closed loop: `concurrency` clients, each sending its next request when the last one answered."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(10**9))
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        nonlocal errors
        _local.conn = None
        while time.perf_counter() < deadline:
            with lock:
                n = next(counter)
            if max_requests is not None and n >= max_requests:
                return
            started = time.perf_counter()
            status, _ = make_request(n)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors += status >= 400

    wall = run_clients(client, concurrency)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": round(quantiles[49] * 1000, 2),
        "p95_ms": round(quantiles[94] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
    }


def hs256_token(address: str, secret: str) -> str:
    import jwt

    now = int(time.time())
    claims = {"did": f"did:pkh:eip155:1:{address}", "token_type": "access", "jti": uuid.uuid4().hex, "exp": now + 3600}
    return jwt.encode(claims, secret, algorithm="HS256")


# Production runs with these on (HUMAN_POINTS_* and FF_API_ANALYTICS, an INFO access line per request); the
# benchmark's `--flags on` mode sets them, `--flags off` leaves the defaults.
PRODUCTION_FLAGS = {
    "HUMAN_POINTS_ENABLED": "true",
    "HUMAN_POINTS_WRITE_ENABLED": "true",
    "FF_API_ANALYTICS": "on",
    "LOG_LEVEL": "INFO",
    # The per-key rate limits (django-ratelimit on the embedded Redis); the seeded key's limits are set high enough
    # that this mode measures their cost, not 429 answers.
    "RATELIMIT_ENABLE": "true",
}
FLAG_MODES = {"off": {}, "on": PRODUCTION_FLAGS, "on+prepared": PRODUCTION_FLAGS}
# "on+prepared": the production flags with protocol-level prepared statements (settings/database.py), the opt-in
# for a direct connection or pgbouncer >= 1.21 with max_prepared_statements
PREPARED_URL_OPTIONS = "server_side_binding=true&prepare_threshold=1"
TRACED_ROUTES = ("v2 score, warm, one address", "v2 score, warm, many addresses")


def measured(server: Server, pg_pid: int | None, make_request, *, concurrency: int, **load_args) -> dict:
    """`load` plus the CPU the workers and PostgreSQL spent on it, per request."""
    workers, pg = server.worker_pids(), measure.children(pg_pid)
    workers_before, pg_before = measure.cpu_seconds(workers), measure.cpu_seconds(pg)
    result = load(make_request, concurrency=concurrency, **load_args)
    requests = max(result["requests"], 1)
    worker_cpu = measure.cpu_delta(workers_before, measure.cpu_seconds(server.worker_pids()))
    result["worker_cpu_ms"] = round(worker_cpu * 1000 / requests, 2)
    pg_cpu = measure.cpu_delta(pg_before, measure.cpu_seconds(measure.children(pg_pid)))
    result["pg_cpu_ms"] = round(pg_cpu * 1000 / requests, 2) if pg_pid else None
    return result


def traced(url: str, pgdata: Path, make_request, *, concurrency: int, requests: int) -> dict:
    """Round trips and lock hold per request, from PostgreSQL's statement log over `requests` requests."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, measure.StatementLog(conn, pgdata / "log") as log:
        time.sleep(0.3)  # idle backends apply the reload within milliseconds
        load(make_request, concurrency=concurrency, seconds=60, max_requests=2 * concurrency)
        log.mark()
        result = load(make_request, concurrency=concurrency, seconds=120, max_requests=requests)
        time.sleep(0.2)
        trace = log.collect()
    holds = trace.lock_holds_ms()
    per_request = trace.round_trips() / max(result["requests"], 1)
    return {
        "requests": result["requests"],
        "errors": result["errors"],
        "round_trips": round(per_request, 1),
        "lock_hold_mean_ms": round(statistics.fmean(holds), 2) if holds else None,
        "lock_hold_p95_ms": round(statistics.quantiles(holds, n=20)[18], 1) if len(holds) > 1 else None,
        "example": [sql for _at, _pid, sql in trace.statements[: round(per_request)]],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--addresses", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--flags", choices=("both", "on", "off"), default="both")
    parser.add_argument("--trace-requests", type=int, default=200, help="requests per statement-log pass")
    parser.add_argument("--routes", choices=("all", "v2"), default="all", help="v2: only the v2 score runs")
    parser.add_argument(
        "--prepared", action="store_true", help="also run the flags-on mode with server-side prepared statements"
    )
    args = parser.parse_args()

    secret = "bench-secret-key-not-for-production-use"
    url = database_url()
    embedded = not os.environ.get("DATABASE_URL")
    pgdata = Path(os.environ["PGSERVER_DATA"]) if embedded else None
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "settings.base"}
    env.update(SECRET_KEY=secret, LOG_LEVEL="WARNING", SCORER_ENV="development")
    print(f"seeding {args.addresses} addresses x {STAMPS_PER_ADDRESS} signed stamps ...", flush=True)
    data = seed(env, args.addresses)
    community, key, stamps = data["community"], data["key"], data["stamps"]
    addresses = list(stamps)
    env["CERAMIC_CACHE_SCORER_ID"] = str(community)
    api_key = {"X-API-Key": key}
    tokens = {address: {"Authorization": f"Bearer {hs256_token(address, secret)}"} for address in addresses}

    def v2_one(n: int):
        return request("GET", f"/v2/stamps/{community}/score/{addresses[0]}", headers=api_key)

    def v2(n: int):
        return request("GET", f"/v2/stamps/{community}/score/{addresses[n % len(addresses)]}", headers=api_key)

    def embed_get(n: int):
        return request("GET", f"/internal/embed/score/{community}/{addresses[n % len(addresses)]}")

    def embed_post(n: int):
        address = addresses[n % len(addresses)]
        body = {"scorer_id": community, "stamps": stamps[address][:3]}
        return request("POST", f"/internal/embed/stamps/{address}", body)

    def bulk_post(n: int):
        address = addresses[n % len(addresses)]
        items = [{"provider": s["credentialSubject"]["provider"], "stamp": s} for s in stamps[address][:3]]
        return request("POST", "/ceramic-cache/stamps/bulk", items, headers=tokens[address])

    def ceramic_get(n: int):
        address = addresses[n % len(addresses)]
        return request("GET", f"/ceramic-cache/score/{address}", headers=tokens[address])

    routes = (
        (TRACED_ROUTES[0], v2_one),
        (TRACED_ROUTES[1], v2),
        ("embed GET score", embed_get),
        ("embed POST 3 stamps + rescore", embed_post),
        ("ceramic-cache POST bulk 3 stamps", bulk_post),
        ("ceramic-cache GET score (stored)", ceramic_get),
    )
    if args.routes == "v2":
        routes = routes[:2]
    modes: tuple[str, ...] = ("off", "on") if args.flags == "both" else (args.flags,)
    if args.prepared:
        modes += ("on+prepared",)
    results: dict[tuple[str, int], dict[str, dict]] = {}
    traces: dict[tuple[str, int], dict[str, dict]] = {}
    peaks: dict[str, list[float]] = {}
    pg_pid = measure.postmaster_pid(pgdata)
    for mode in modes:
        print(f"flags {mode}: serving with {args.workers} workers ...", flush=True)
        mode_env = {**env, **FLAG_MODES[mode]}
        if mode == "on+prepared":
            mode_env["DATABASE_URL"] = url + ("&" if "?" in url else "?") + PREPARED_URL_OPTIONS
        server = Server(mode_env, args.workers)
        server.start()
        try:
            # Cold: a fresh server, every address once: each request verifies 10 proofs never seen by its worker.
            cold = measured(server, pg_pid, v2, concurrency=1, seconds=600, max_requests=len(addresses))
            results.setdefault((COLD, 1), {})[mode] = cold
            for name, fn in routes:
                for concurrency in (1, 8):
                    result = measured(server, pg_pid, fn, concurrency=concurrency, seconds=args.seconds)
                    results.setdefault((name, concurrency), {})[mode] = result
            if embedded:
                for name, fn in routes[:2]:
                    for concurrency in (1, 8):
                        trace = traced(url, pgdata, fn, concurrency=concurrency, requests=args.trace_requests)
                        traces.setdefault((name, concurrency), {})[mode] = trace
            peaks[mode] = server.worker_peak_rss_mb()
        finally:
            server.stop()

    report(args, modes, results, traces, peaks)
    if embedded:
        from settings import embedded_pg

        embedded_pg.stop()
    sys.stdout.flush()
    os._exit(0)


COLD = "v2 score, cold cache (10 new proofs/request)"


def report(args, modes, results, traces, peaks) -> None:
    """Markdown tables, flags-off and flags-on rows side by side, ready for docs/performance.md."""
    print(
        f"\n{args.workers} gunicorn sync workers, {os.cpu_count()} cores, {args.addresses} addresses x "
        f"{STAMPS_PER_ADDRESS} stamps, {args.seconds:g} s per run; CPU = worker / PostgreSQL CPU ms per request\n"
    )
    print("| route | conc | flags | req/s | p50 ms | p95 ms | p99 ms | errors | worker CPU ms | PG CPU ms |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for (name, concurrency), by_mode in results.items():
        for mode in modes:
            r = by_mode[mode]
            print(
                f"| {name} | {concurrency} | {mode} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} "
                f"| {r['errors']} | {r['worker_cpu_ms']} | {r['pg_cpu_ms'] if r['pg_cpu_ms'] is not None else 'n/a'} |"
            )
    if traces:
        print(f"\nFrom PostgreSQL's statement log, {args.trace_requests} requests per pass:\n")
        print("| route | conc | flags | round trips / request | lock hold mean ms | lock hold p95 ms | errors |")
        print("|---|---:|---|---:|---:|---:|---:|")
        for (name, concurrency), by_mode in traces.items():
            for mode in modes:
                t = by_mode[mode]
                print(
                    f"| {name} | {concurrency} | {mode} | {t['round_trips']} | {t['lock_hold_mean_ms']} "
                    f"| {t['lock_hold_p95_ms']} | {t['errors']} |"
                )
        mode = "on" if "on" in modes else modes[-1]
        print(f"\nStatements of one warm v2 request (one address, flags {mode}):")
        for number, sql in enumerate(traces[(TRACED_ROUTES[0], 1)][mode]["example"], 1):
            print(f"  {number:2}. {sql[:110]}")
    print()
    for mode in modes:
        warm = results[(TRACED_ROUTES[1], 1)][mode]
        per_credential = (results[(COLD, 1)][mode]["p50_ms"] - warm["p50_ms"]) / STAMPS_PER_ADDRESS
        print(
            f"flags {mode}: cold cost per credential ≈ {per_credential:.2f} ms (p50 difference / "
            f"{STAMPS_PER_ADDRESS}); peak RSS per worker (VmHWM): {peaks[mode]} MB"
        )


if __name__ == "__main__":
    main()
