"""Benchmark per-key rate limiting and POST /registry/submit-passport under gunicorn as production runs it.

Prints the warm v2 score route with RATELIMIT_ENABLE off and on, alternated over two rounds each (counters in
Redis: CELERY_BROKER_URL when set, else an embedded Redis in .redis-bench/, over its Unix socket), the cost of
one rate-limit check measured in-process, and submit-passport unsigned at concurrency 1 and 8 and signed
(EIP-191 signature + one-time nonce) at concurrency 1. Reuses bench/run.py's database, seeding,
server and load helpers. Usage: .venv/bin/python bench/submit_passport.py [--addresses 200] [--seconds 6]
"""

import argparse
import os
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402 - bench/run.py: the shared helpers

run.PORT = int(os.environ.get("BENCH_PORT", "8350"))
os.environ.setdefault("REDIS_DATA", str(run.REPO / ".redis-bench"))
SIGNED_REQUESTS = 1500


def prepare_database(database_url: str, nonces: list[str]) -> None:
    """An unlimited-in-practice rate on the bench key (counted, never refused) and unused nonces."""
    import psycopg

    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE account_accountapikey SET rate_limit = '100000000/h'")
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO account_nonce (nonce, created_on, was_used) VALUES (%s, %s, false)",
                [(nonce, now) for nonce in nonces],
            )


def signed_bodies(community: int, count: int) -> list[dict]:
    from eth_account import Account
    from eth_account.messages import encode_defunct

    from scorer_fast.domain.signatures import signing_message

    wallet = Account.from_key(bytes.fromhex("be9c" * 16))  # bench-only key
    address = wallet.address.lower()
    bodies = []
    for n in range(count):
        nonce = f"bench-nonce-{n}"
        signature = wallet.sign_message(encode_defunct(text=signing_message(nonce))).signature.hex()
        bodies.append({"address": address, "scorer_id": community, "signature": signature, "nonce": nonce})
    return bodies


def rate_limit_check_cost(env: dict, calls: int = 5000) -> float:
    """The added work per request, measured in-process (immune to the load generator's noise): median µs of one
    `enforce_rate_limit` call (django-ratelimit: SET NX, then EXISTS + INCRBY as one script, scorer_fast/redis_cache.py,
    on the configured Redis)."""
    code = f"""
import django, os, statistics, time
django.setup()
from django.test import RequestFactory
from scorer_fast.services.api_keys import ApiKeyPrincipal
from scorer_fast.services.rate_limits import enforce_rate_limit
principal = ApiKeyPrincipal("bench", 1, None, prefix="benchkey", rate_limit="100000000/h")
request = RequestFactory().get("/v2/stamps/1/score/0x0")
samples = []
for _ in range({calls}):
    started = time.perf_counter()
    enforce_rate_limit(request, principal)
    samples.append(time.perf_counter() - started)
print(statistics.median(samples) * 1e6)
os._exit(0)
"""
    env = {**env, "RATELIMIT_ENABLE": "on"}
    out = run.subprocess.run([sys.executable, "-c", code], env=env, cwd=run.REPO, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--addresses", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from settings import embedded_redis

    redis_url = os.environ.get("CELERY_BROKER_URL") or embedded_redis.ensure_running()
    secret = "bench-secret-key-not-for-production-use"
    env = {**os.environ, "DATABASE_URL": run.database_url(), "DJANGO_SETTINGS_MODULE": "settings.base"}
    env.update(SECRET_KEY=secret, LOG_LEVEL="WARNING", SCORER_ENV="development", CELERY_BROKER_URL=redis_url)
    print(f"seeding {args.addresses} addresses x {run.STAMPS_PER_ADDRESS} signed stamps ...", flush=True)
    data = run.seed(env, args.addresses)
    community, key, addresses = data["community"], {"X-API-Key": data["key"]}, list(data["stamps"])
    signed = signed_bodies(community, SIGNED_REQUESTS)
    prepare_database(env["DATABASE_URL"], [body["nonce"] for body in signed])

    def v2(n: int):
        return run.request("GET", f"/v2/stamps/{community}/score/{addresses[n % len(addresses)]}", headers=key)

    def submit(n: int):
        body = {"address": addresses[n % len(addresses)], "scorer_id": community}
        return run.request("POST", "/registry/submit-passport", body, headers=key)

    def submit_signed(n: int):
        return run.request("POST", "/registry/submit-passport", signed[n], headers=key)

    results = []
    for round_number, enabled in enumerate(("off", "on", "off", "on")):  # alternated: load noise hits both states
        server = run.Server({**env, "RATELIMIT_ENABLE": enabled}, args.workers)
        server.start()
        try:
            run.load(v2, concurrency=2, seconds=600, max_requests=len(addresses) * 2)  # warm both workers' caches
            for concurrency in (1, 8):
                stats = run.load(v2, concurrency=concurrency, seconds=args.seconds)
                results.append((f"v2 score, warm, RATELIMIT_ENABLE={enabled}", concurrency, stats))
            if round_number == 1:
                for concurrency in (1, 8):
                    stats = run.load(submit, concurrency=concurrency, seconds=args.seconds)
                    results.append(("submit-passport, unsigned", concurrency, stats))
                stats = run.load(submit_signed, concurrency=1, seconds=args.seconds, max_requests=SIGNED_REQUESTS)
                results.append(("submit-passport, signed (new nonce each)", 1, stats))
        finally:
            server.stop()

    print(f"\n{args.workers} gunicorn sync workers, {os.cpu_count()} cores, rate-limit Redis {redis_url}\n")
    print(f"{'route':48} {'conc':>4} {'reqs':>6} {'err':>4} {'rps':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, concurrency, r in results:
        print(
            f"{name:48} {concurrency:>4} {r['requests']:>6} {r['errors']:>4} {r['rps']:>8} "
            f"{r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8}"
        )
    for concurrency in (1, 8):
        off, on = (
            statistics.median(r["p50_ms"] for name, c, r in results if name.endswith(f"={state}") and c == concurrency)
            for state in ("off", "on")
        )
        print(f"rate limits on - off at concurrency {concurrency}: {on - off:+.2f} ms p50 (median of 2 rounds each)")
    print(f"one rate-limit check in-process: median {rate_limit_check_cost(env):.0f} µs")
    if not os.environ.get("DATABASE_URL"):
        from settings import embedded_pg

        embedded_pg.stop()
    if not os.environ.get("CELERY_BROKER_URL"):
        embedded_redis.stop()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
