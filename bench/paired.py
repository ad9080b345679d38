"""Paired A/B of the warm v2 score (one address, production flags on): a base checkout and this one, each served by
its own gunicorn at once, and the load switched between them every --slot seconds (base, this, this, base, ...),
so that both sides see the same minutes of the machine. bench/ab.py runs whole bench/run.py passes in turns, minutes
apart; on a shared machine the CPU per request drifts by ±20 % between them, while here it cancels out.
Usage: .venv/bin/python bench/paired.py --base /path/to/base/checkout [--seconds 20] [--slot 0.5] [--workers 4]
[--addresses 1] [--schema-sql ../shared/contract/schema.sql]

Each side is served and seeded by its own checkout's bench/run.py (`seed`, `Server`), with its own .venv, on its
own database (`scorer_paired_base`, `scorer_paired_this`) of this checkout's embedded PostgreSQL (.pgdata-bench);
this side on BENCH_PORT (default 8765), the base on --base-port. Worker CPU is read per side; PostgreSQL's CPU is
the server's during that side's slots. Prints, per concurrency, each side's figures and the ratio this/base.
`--addresses N` seeds N addresses (the load stays on the first): tables of bench/run.py's size. `--schema-sql`
loads a pg_dump schema (the production tables and their indexes) into both databases before they are seeded;
without it each side creates its tables from its models, which have no indexes beyond the keys.
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
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("PGSERVER_DATA", str(REPO / ".pgdata-bench"))

from bench import measure  # noqa: E402
from bench.run import database_url, run_clients  # noqa: E402

# Run by a side's own Python in its checkout: seed, serve, print what the load needs, stop when stdin closes.
_SERVE = """
import json, os, sys
sys.path.insert(0, os.getcwd())
from bench import run
env = {**os.environ, **run.PRODUCTION_FLAGS}
data = run.seed(env, int(os.environ["PAIRED_ADDRESSES"]))
env["CERAMIC_CACHE_SCORER_ID"] = str(data["community"])
server = run.Server(env, int(os.environ["PAIRED_WORKERS"]))
server.start()
address = min(data["stamps"])
print(json.dumps({"community": data["community"], "key": data["key"], "address": address,
                  "master": server.process.pid}), flush=True)
sys.stdin.read()
server.stop()
os._exit(0)
"""


@dataclass
class Side:
    name: str
    port: int
    path: str = ""
    key: str = ""
    master: int = 0
    process: subprocess.Popen | None = None
    latencies: dict[int, list[float]] = field(default_factory=dict)
    errors: dict[int, int] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)
    worker_cpu: dict[int, float] = field(default_factory=dict)
    pg_cpu: dict[int, float] = field(default_factory=dict)

    def start(self, checkout: Path, database: str, args: argparse.Namespace) -> None:
        url = database_url(database)
        if args.schema_sql is not None:
            _load_schema(url, args.schema_sql)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "settings.base",
            "SECRET_KEY": "bench-secret-key-not-for-production-use",
            "LOG_LEVEL": "WARNING",
            "SCORER_ENV": "development",
            "BENCH_PORT": str(self.port),
            "PAIRED_WORKERS": str(args.workers),
            "PAIRED_ADDRESSES": str(args.addresses),
        }
        env.pop("PGSERVER_DATA", None)  # the side's own default; the database URL above is what it uses
        python = checkout / ".venv" / "bin" / "python"
        self.process = subprocess.Popen(
            [str(python), "-c", _SERVE], cwd=checkout, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"{checkout}: seeding or serving failed")
        data = json.loads(line)
        self.path = f"/v2/stamps/{data['community']}/score/{data['address']}"
        self.key, self.master = data["key"], data["master"]

    def workers(self) -> list[int]:
        return measure.children(self.master)

    def peak_rss_mb(self) -> float:
        return max(measure.peak_rss_mb(self.workers()))

    def stop(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
            self.process.wait(30)


def _load_schema(url: str, schema_sql: Path) -> None:
    """As scorer_fast/db/bootstrap.py loads it: the side's bootstrap then finds the tables and creates none."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(schema_sql.read_text(encoding="utf-8"))


def slot(side: Side, concurrency: int, seconds: float, pg_pid: int | None, *, record: bool) -> None:
    """`concurrency` closed-loop keep-alive clients on `side` for `seconds`; with `record`, added to its figures."""
    workers, pg = side.workers(), measure.children(pg_pid)
    workers_before, pg_before = measure.cpu_seconds(workers), measure.cpu_seconds(pg)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + seconds

    def client() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", side.port, timeout=30)
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                conn.request("GET", side.path, headers={"X-API-Key": side.key})
                response = conn.getresponse()
                response.read()
                failed = response.status >= 400
            except (http.client.HTTPException, OSError):
                conn = http.client.HTTPConnection("127.0.0.1", side.port, timeout=30)
                failed = True
            with lock:
                latencies.append(time.perf_counter() - began)
                errors += failed

    run_clients(client, concurrency)
    if not record:
        return
    wall = time.perf_counter() - started
    side.latencies.setdefault(concurrency, []).extend(latencies)
    side.errors[concurrency] = side.errors.get(concurrency, 0) + errors
    side.seconds[concurrency] = side.seconds.get(concurrency, 0.0) + wall
    worker = measure.cpu_delta(workers_before, measure.cpu_seconds(side.workers()))
    side.worker_cpu[concurrency] = side.worker_cpu.get(concurrency, 0.0) + worker
    pg_used = measure.cpu_delta(pg_before, measure.cpu_seconds(measure.children(pg_pid)))
    side.pg_cpu[concurrency] = side.pg_cpu.get(concurrency, 0.0) + pg_used


def figures(side: Side, concurrency: int) -> dict[str, float]:
    latencies = side.latencies[concurrency]
    requests = max(len(latencies), 1)
    worker = side.worker_cpu[concurrency] * 1000 / requests
    pg = side.pg_cpu[concurrency] * 1000 / requests
    return {
        "requests": len(latencies),
        "rps": len(latencies) / side.seconds[concurrency],
        "p50": statistics.median(latencies) * 1000,
        "p95": statistics.quantiles(latencies, n=20)[18] * 1000,
        "errors": side.errors[concurrency],
        "worker": worker,
        "pg": pg,
        "total": worker + pg,
    }


def report(base: Side, this: Side, concurrencies: list[int], args: argparse.Namespace) -> None:
    schema = args.schema_sql or "each side's models"
    print(
        f"\nwarm v2 score, one address of {args.addresses}, flags on, {args.workers} workers per side, {args.seconds} s"
    )
    print(f"per side; tables from {schema}")
    print(f"per concurrency in {args.slot} s slots; base = {args.base}\n")
    print("| c | side | requests | req/s | p50 ms | p95 ms | errors | worker CPU ms | PG CPU ms | total CPU ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for concurrency in concurrencies:
        rows = {side.name: figures(side, concurrency) for side in (base, this)}
        for name, row in rows.items():
            print(
                f"| {concurrency} | {name} | {row['requests']} | {row['rps']:.1f} | {row['p50']:.2f} | "
                f"{row['p95']:.2f} | {row['errors']} | {row['worker']:.2f} | {row['pg']:.2f} | {row['total']:.2f} |"
            )
        ratio = {key: rows["this"][key] / rows["base"][key] for key in ("rps", "p50", "p95", "worker", "pg", "total")}
        print(
            f"| {concurrency} | this/base | | {ratio['rps']:.0%} | {ratio['p50']:.0%} | {ratio['p95']:.0%} | | "
            f"{ratio['worker']:.0%} | {ratio['pg']:.0%} | **{ratio['total']:.0%}** |"
        )
    print(f"\npeak RSS per worker (VmHWM): base {base.peak_rss_mb():.1f} MB, this {this.peak_rss_mb():.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=Path, required=True, help="a checkout with its own .venv (scripts/test)")
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per side and concurrency")
    parser.add_argument("--slot", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--base-port", type=int, default=8950)
    parser.add_argument("--addresses", type=int, default=1, help="seeded per side; the load is on the first")
    parser.add_argument("--schema-sql", type=Path, help="a pg_dump schema loaded into both databases first")
    args = parser.parse_args()
    if os.environ.get("DATABASE_URL"):
        sys.exit("bench/paired.py uses its own embedded PostgreSQL (it reads the server's CPU): unset DATABASE_URL")
    from settings import embedded_pg

    embedded_pg.ensure_running()
    pg_pid = measure.postmaster_pid(Path(os.environ["PGSERVER_DATA"]))
    base = Side("base", args.base_port)
    this = Side("this", int(os.environ.get("BENCH_PORT", "8765")))
    concurrencies = [int(value) for value in args.concurrency.split(",")]
    try:
        print("seeding and serving both sides ...", flush=True)
        base.start(args.base.resolve(), "scorer_paired_base", args)
        this.start(REPO, "scorer_paired_this", args)
        for concurrency in concurrencies:
            for side in (base, this):  # warm: every worker has verified the proofs and filled its caches
                slot(side, concurrency, 2.0, pg_pid, record=False)
            turns = max(1, round(args.seconds / args.slot))
            for turn in range(turns):
                order = (base, this) if turn % 2 == 0 else (this, base)
                for side in order:
                    slot(side, concurrency, args.slot, pg_pid, record=True)
        report(base, this, concurrencies, args)
    finally:
        base.stop()
        this.stop()
        embedded_pg.stop()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
