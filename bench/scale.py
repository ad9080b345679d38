"""Scale-out benchmark: two gunicorn instances (as two containers would be) behind pgbouncer in transaction mode,
one PostgreSQL, one Redis, many addresses; the warm v2 score with the production flags on.
Usage: .venv/bin/python bench/scale.py [--addresses 1000] [--seconds 5] [--workers 2] [--pool-size 4]
[--concurrency 8,32,64] [--restart-seconds 8]

Prints, per concurrency (closed loop: each client sends its next request when the last one answered, requests
alternate between the two instances as a load balancer would): req/s, p50/p95/p99, errors, the PostgreSQL server
connections seen (total and running a statement, max over samples of pg_stat_activity every 10 ms), the clients
pgbouncer kept waiting (max of SHOW POOLS' cl_waiting) and the CPU per request of the workers, PostgreSQL and
pgbouncer. Then one more run at the middle concurrency with the database restarted after a third of it: errors,
their statuses and the time from the restart until requests succeed again.

It installs nothing: it needs Debian's pgbouncer (`apt-get install pgbouncer`; /usr/sbin/pgbouncer), which is
run as an unprivileged user when started as root (pgbouncer refuses root), with its configuration in a temporary
folder. PostgreSQL is the embedded server (.pgdata-scale), Redis the embedded one (.redis-scale). Ports:
BENCH_PORT (default 8765) and the next two (instance B, pgbouncer), on 127.0.0.1.
"""

import argparse
import http.client
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("PGSERVER_DATA", str(REPO / ".pgdata-scale"))
os.environ.setdefault("REDIS_DATA", str(REPO / ".redis-scale"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from run import PORT, PRODUCTION_FLAGS, STAMPS_PER_ADDRESS, Server, database_url, run_clients, seed  # noqa: E402

from bench import measure  # noqa: E402

PGBOUNCER_CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
DATABASE = "scorer_scale"
UNPRIVILEGED_USERS = ("pgserver", "postgres", "nobody")


def pgbouncer_binary() -> str | None:
    found = shutil.which("pgbouncer")
    return found or next((path for path in PGBOUNCER_CANDIDATES if os.access(path, os.X_OK)), None)


class PgBouncer:
    """pgbouncer in transaction mode in front of the embedded server's Unix socket."""

    def __init__(self, binary: str, *, port: int, socket_dir: str, pool_size: int, max_client_conn: int):
        self.binary, self.port = binary, port
        self.folder = Path(tempfile.mkdtemp(prefix="scorer_fast_pgbouncer_"))
        self.user = (
            next((name for name in UNPRIVILEGED_USERS if _user_exists(name)), None) if os.geteuid() == 0 else None
        )
        (self.folder / "pgbouncer.ini").write_text(
            f"""[databases]
{DATABASE} = host={socket_dir} port=5432 dbname={DATABASE} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {self.folder / "users.txt"}
admin_users = postgres
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {max_client_conn}
max_db_connections = {pool_size}
; a request waits at most this long for a server connection (well under gunicorn's 30 s timeout)
query_wait_timeout = 10
server_connect_timeout = 3
server_login_retry = 0
logfile = {self.folder / "pgbouncer.log"}
pidfile = {self.folder / "pgbouncer.pid"}
"""
        )
        (self.folder / "users.txt").write_text('"postgres" ""\n')
        if self.user:
            passwd = pwd.getpwnam(self.user)
            for path in (self.folder, *self.folder.iterdir()):
                os.chown(path, passwd.pw_uid, passwd.pw_gid)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, str(self.folder / "pgbouncer.ini")],
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import psycopg

                psycopg.connect(self.url("pgbouncer"), autocommit=True, prepare_threshold=None).close()
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError(f"pgbouncer did not start; see {self.folder / 'pgbouncer.log'}")

    def url(self, name: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


_local = threading.local()


def get(port: int, path: str, headers: dict) -> int:
    """One request on this thread's keep-alive connection to `port`; a transport failure is status 599."""
    connections = getattr(_local, "connections", None)
    if connections is None:
        connections = _local.connections = {}
    connection = connections.get(port)
    if connection is None:
        connection = connections[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
        return response.status
    except (http.client.HTTPException, OSError):
        connection.close()
        connections.pop(port, None)
        return 599


def closed_loop(send, *, concurrency: int, seconds: float) -> tuple[list[tuple[float, float, int]], float]:
    """(start time, latency, status) of every request of `concurrency` clients for `seconds`; and the wall time."""
    results: list[tuple[float, float, int]] = []
    counter = iter(range(10**9))
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < deadline:
            with lock:
                n = next(counter)
            started = time.perf_counter()
            status = send(n)
            with lock:
                results.append((started, time.perf_counter() - started, status))

    return results, run_clients(client, concurrency)


class Sampler:
    """Max PostgreSQL server connections of the benchmark database (total, and running a statement) and max
    clients waiting in pgbouncer, sampled every 10 ms while the `with` block runs."""

    def __init__(self, direct_url: str, bouncer_url: str):
        self.direct_url, self.bouncer_url = direct_url, bouncer_url
        self.max_connections = self.max_active = self.max_waiting = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        import psycopg

        direct = psycopg.connect(self.direct_url, autocommit=True)
        admin = psycopg.connect(self.bouncer_url, autocommit=True, prepare_threshold=None)
        admin.cursor_factory = psycopg.ClientCursor
        try:
            while not self._stop.is_set():
                try:
                    total, active = direct.execute(
                        "SELECT COUNT(*), COUNT(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                        [DATABASE],
                    ).fetchone()
                    self.max_connections = max(self.max_connections, total)
                    self.max_active = max(self.max_active, active)
                    pools = admin.execute("SHOW POOLS")
                    names = [column.name for column in pools.description]
                    for row in pools.fetchall():
                        pool = dict(zip(names, row, strict=True))
                        if pool["database"] == DATABASE:
                            self.max_waiting = max(self.max_waiting, int(pool["cl_waiting"]))
                except psycopg.Error:
                    try:
                        direct.close()
                        direct = psycopg.connect(self.direct_url, autocommit=True)
                    except psycopg.Error:
                        pass
                time.sleep(0.01)
        finally:
            direct.close()
            admin.close()

    def __enter__(self) -> "Sampler":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def percentile_ms(latencies: list[float], q: int) -> float:
    if len(latencies) < 2:
        return round((latencies or [0.0])[0] * 1000, 1)
    return round(statistics.quantiles(latencies, n=100)[q - 1] * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--addresses", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per instance")
    parser.add_argument("--pool-size", type=int, default=4, help="pgbouncer default_pool_size")
    parser.add_argument("--max-client-conn", type=int, default=200)
    parser.add_argument("--concurrency", default="8,32,64")
    parser.add_argument("--warm-seconds", type=float, default=20)
    parser.add_argument("--restart-seconds", type=float, default=8, help="0: no database restart run")
    args = parser.parse_args()
    binary = pgbouncer_binary()
    if binary is None:
        print(
            "bench/scale.py needs pgbouncer and installs nothing itself. On Debian/Ubuntu: "
            "`apt-get install pgbouncer` (then /usr/sbin/pgbouncer); elsewhere see https://www.pgbouncer.org/install.html"
        )
        sys.exit(2)
    concurrencies = [int(value) for value in args.concurrency.split(",")]

    from settings import embedded_pg, embedded_redis

    direct_url = database_url(DATABASE)
    import psycopg

    with psycopg.connect(direct_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {DATABASE} SET timezone TO 'UTC'")  # as on RDS: no SET on connect
    pgdata = embedded_pg.data_dir()
    redis_url = embedded_redis.ensure_running()
    secret = "bench-secret-key-not-for-production-use"
    env = {**os.environ, "DATABASE_URL": direct_url, "DJANGO_SETTINGS_MODULE": "settings.base"}
    env.update(SECRET_KEY=secret, SCORER_ENV="development", LOG_LEVEL="WARNING", CELERY_BROKER_URL=redis_url)
    started = time.perf_counter()
    print(f"seeding {args.addresses} addresses x {STAMPS_PER_ADDRESS} signed stamps ...", flush=True)
    data = seed(env, args.addresses)
    print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)
    community, key = data["community"], data["key"]
    addresses = list(data["stamps"])
    headers = {"X-API-Key": key}

    bouncer = PgBouncer(
        binary,
        port=PORT + 2,
        socket_dir=str(pgdata),
        pool_size=args.pool_size,
        max_client_conn=args.max_client_conn,
    )
    bouncer.start()
    env.update(PRODUCTION_FLAGS, DATABASE_URL=bouncer.url(), CERAMIC_CACHE_SCORER_ID=str(community))
    instances = [Server(env, args.workers, PORT), Server(env, args.workers, PORT + 1)]
    ports = [instance.port for instance in instances]

    def send(n: int) -> int:
        address = addresses[(n // 2) % len(addresses)]  # every address, through both instances in turn
        return get(ports[n % 2], f"/v2/stamps/{community}/score/{address}", headers)

    rows = []
    try:
        for instance in instances:
            instance.start()
        # Each worker keeps its own proof verdicts: the first pass verifies, later ones are mostly warm.
        print(f"warming for {args.warm_seconds:g} s ...", flush=True)
        closed_loop(send, concurrency=8, seconds=args.warm_seconds)
        pg_pid = measure.postmaster_pid(pgdata)
        for concurrency in concurrencies:
            rows.append(step(send, instances, bouncer, direct_url, pg_pid, concurrency, args.seconds))
        restart = None
        if args.restart_seconds > 0:
            middle = concurrencies[len(concurrencies) // 2]
            restart = restart_run(send, bouncer, direct_url, pgdata, middle, args.restart_seconds)
    finally:
        for instance in instances:
            instance.stop()
        bouncer.stop()
    report(args, rows, restart)
    embedded_pg.stop()
    embedded_redis.stop()
    sys.stdout.flush()
    os._exit(0)


def step(send, instances, bouncer, direct_url, pg_pid, concurrency: int, seconds: float) -> dict:
    workers = [pid for instance in instances for pid in instance.worker_pids()]
    pg = measure.children(pg_pid)
    bouncer_pids = [bouncer.process.pid]
    before = [measure.cpu_seconds(pids) for pids in (workers, pg, bouncer_pids)]
    with Sampler(direct_url, bouncer.url("pgbouncer")) as sampler:
        results, wall = closed_loop(send, concurrency=concurrency, seconds=seconds)
    after = [measure.cpu_seconds(pids) for pids in (workers, measure.children(pg_pid), bouncer_pids)]
    requests = max(len(results), 1)
    cpu = [round(measure.cpu_delta(b, a) * 1000 / requests, 2) for b, a in zip(before, after, strict=True)]
    latencies = [latency for _at, latency, _status in results]
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "rps": round(len(results) / wall, 1),
        "p50": percentile_ms(latencies, 50),
        "p95": percentile_ms(latencies, 95),
        "p99": percentile_ms(latencies, 99),
        "errors": sum(status >= 400 for _at, _latency, status in results),
        "server_connections": sampler.max_connections,
        "server_active": sampler.max_active,
        "waiting": sampler.max_waiting,
        "worker_cpu": cpu[0],
        "pg_cpu": cpu[1],
        "bouncer_cpu": cpu[2],
    }


def restart_run(send, bouncer, direct_url, pgdata: Path, concurrency: int, seconds: float) -> dict:
    """The database restarted (fast shutdown, then start) a third into the run: what the clients saw."""
    from pgserver._commands import pg_ctl  # type: ignore[import-not-found]

    restart: dict = {}

    def restart_later() -> None:
        time.sleep(seconds / 3)
        restart["at"] = time.perf_counter()
        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=user)
        restart["up"] = time.perf_counter()

    restarter = threading.Thread(target=restart_later)
    with Sampler(direct_url, bouncer.url("pgbouncer")) as sampler:
        restarter.start()
        results, wall = closed_loop(send, concurrency=concurrency, seconds=seconds)
        restarter.join()
    failed = [(at, latency, status) for at, latency, status in results if status >= 400]
    statuses: dict[int, int] = {}
    for _at, _latency, status in failed:
        statuses[status] = statuses.get(status, 0) + 1
    succeeded_after = [at + latency for at, latency, status in results if status < 400 and at > restart["at"]]
    last_failure_end = max((at + latency for at, latency, _status in failed), default=restart["at"])
    recovered = min((end for end in succeeded_after if end >= last_failure_end), default=None)
    latencies = [latency for _at, latency, _status in results]
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        "requests": len(results),
        "rps": round(len(results) / wall, 1),
        "p99": percentile_ms(latencies, 99),
        "max_ms": round(max(latencies) * 1000, 1),
        "errors": len(failed),
        "statuses": statuses,
        "restart_ms": round((restart["up"] - restart["at"]) * 1000),
        "recovered_ms": round((recovered - restart["at"]) * 1000) if recovered else None,
        "server_connections": sampler.max_connections,
    }


def report(args, rows: list[dict], restart: dict | None) -> None:
    print(
        f"\n2 gunicorn instances x {args.workers} sync workers behind pgbouncer (transaction mode, "
        f"default_pool_size {args.pool_size}, max_client_conn {args.max_client_conn}), one PostgreSQL, one Redis; "
        f"{args.addresses} addresses x {STAMPS_PER_ADDRESS} stamps, warm v2 score, production flags on, "
        f"{args.seconds:g} s per step, {os.cpu_count()} cores (load generator included)\n"
    )
    print(
        "| clients | req/s | p50 ms | p95 ms | p99 ms | errors | server conns max (active) | clients waiting max "
        "| worker / PG / pgbouncer CPU ms per request |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['concurrency']} | {r['rps']} | {r['p50']} | {r['p95']} | {r['p99']} | {r['errors']} "
            f"| {r['server_connections']} ({r['server_active']}) | {r['waiting']} "
            f"| {r['worker_cpu']} / {r['pg_cpu']} / {r['bouncer_cpu']} |"
        )
    if restart:
        print(
            f"\nDatabase restarted (pg_ctl restart -m fast) {restart['seconds'] / 3:.1f} s into a "
            f"{restart['seconds']:g} s run at {restart['concurrency']} clients: {restart['requests']} requests, "
            f"{restart['rps']} req/s, {restart['errors']} errors {restart['statuses'] or ''}, restart took "
            f"{restart['restart_ms']} ms, every request succeeds again {restart['recovered_ms']} ms after the "
            f"restart began; slowest request {restart['max_ms']} ms (p99 {restart['p99']} ms); server connections "
            f"max {restart['server_connections']}"
        )


if __name__ == "__main__":
    main()
