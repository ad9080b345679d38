"""Benchmark the routes under gunicorn as production runs it; prints latency percentiles, requests/second and
peak RSS per worker. Usage: .venv/bin/python bench/run.py [--addresses 200] [--seconds 10] [--workers 2]

It uses DATABASE_URL when set, else the embedded server (own data folder .pgdata-bench); the database
`scorer_bench` is created anew each run.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("PGSERVER_DATA", str(REPO / ".pgdata-bench"))
PORT = 8765
STAMPS_PER_ADDRESS = 10


def database_url() -> str:
    import psycopg

    from settings import embedded_pg

    base = os.environ.get("DATABASE_URL") or embedded_pg.ensure_running()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS scorer_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE scorer_bench")
    head, _, tail = base.partition("?")
    return head.rsplit("/", 1)[0] + "/scorer_bench" + ("?" + tail if tail else "")


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
from scorer_fast.models import CeramicCache
jwk = demo_issuer_jwk()
owner = factories.account()
providers = [f"Provider{{i}}" for i in range({STAMPS_PER_ADDRESS})]
community = factories.community(owner=owner, weights={{p: 2.5 for p in providers}}, threshold="20")
key = factories.api_key(owner)
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
    def __init__(self, env: dict, workers: int):
        self.env = {**env, "PORT": str(PORT), "HOST": "127.0.0.1", "WEB_CONCURRENCY": str(workers)}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "scorer_fast.wsgi:application"],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                request("GET", "/health")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def worker_peak_rss_mb(self) -> list[float]:
        import psutil

        peaks = []
        for child in psutil.Process(self.process.pid).children():
            with open(f"/proc/{child.pid}/status") as status:
                line = next(line for line in status if line.startswith("VmHWM"))
            peaks.append(round(int(line.split()[1]) / 1024, 1))
        return peaks

    def stop(self) -> None:
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

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--addresses", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    secret = "bench-secret-key-not-for-production-use"
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "settings.base"}
    env.update(SECRET_KEY=secret, LOG_LEVEL="WARNING", SCORER_ENV="development")
    print(f"seeding {args.addresses} addresses x {STAMPS_PER_ADDRESS} signed stamps ...", flush=True)
    data = seed(env, args.addresses)
    community, key, stamps = data["community"], data["key"], data["stamps"]
    addresses = list(stamps)
    env["CERAMIC_CACHE_SCORER_ID"] = str(community)
    api_key = {"X-API-Key": key}
    tokens = {address: {"Authorization": f"Bearer {hs256_token(address, secret)}"} for address in addresses}

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

    results = []
    server = Server(env, args.workers)
    server.start()
    try:
        # Cold: a fresh server, every address once: each request verifies 10 proofs never seen by its worker.
        cold = load(v2, concurrency=1, seconds=600, max_requests=len(addresses))
        results.append(("v2 score, cold cache (10 new proofs/request)", 1, cold))
        for name, fn in (
            ("v2 score, warm", v2),
            ("embed GET score", embed_get),
            ("embed POST 3 stamps + rescore", embed_post),
            ("ceramic-cache POST bulk 3 stamps", bulk_post),
            ("ceramic-cache GET score (stored)", ceramic_get),
        ):
            for concurrency in (1, 8):
                results.append((name, concurrency, load(fn, concurrency=concurrency, seconds=args.seconds)))
        peaks = server.worker_peak_rss_mb()
    finally:
        server.stop()

    print(f"\n{args.workers} gunicorn sync workers, {os.cpu_count()} cores, {args.addresses} addresses x 10 stamps\n")
    print(f"{'route':48} {'conc':>4} {'reqs':>6} {'err':>4} {'rps':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, concurrency, r in results:
        print(
            f"{name:48} {concurrency:>4} {r['requests']:>6} {r['errors']:>4} {r['rps']:>8} "
            f"{r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8}"
        )
    warm = next(r for name, c, r in results if name == "v2 score, warm" and c == 1)
    per_credential = (cold["p50_ms"] - warm["p50_ms"]) / STAMPS_PER_ADDRESS
    print(f"\ncold cost per credential ≈ {per_credential:.2f} ms (p50 difference / {STAMPS_PER_ADDRESS})")
    print(f"peak RSS per worker (VmHWM): {peaks} MB")
    if not os.environ.get("DATABASE_URL"):
        from settings import embedded_pg

        embedded_pg.stop()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
