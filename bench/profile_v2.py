"""Profile a warm v2 score in one process, with the production flags on: the WSGI application is called directly
(no gunicorn, no sockets on the HTTP side), so what is left is the worker's own Python plus its database round trips.
Usage: .venv/bin/python bench/profile_v2.py [--requests 500] [--top 35] [--flags on|off] [--prepared N]

Prints the worker CPU and wall time per request without the profiler, then cProfile's top functions by CPU (own time
and cumulative) and own time summed by package. Uses its own embedded server (.pgdata-profile) or DATABASE_URL.
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("PGSERVER_DATA", str(REPO / ".pgdata-profile"))
sys.path.insert(0, str(REPO))

from run import PRODUCTION_FLAGS, STAMPS_PER_ADDRESS, database_url  # noqa: E402

from bench import measure  # noqa: E402

PACKAGES = ("scorer_fast", "django", "ninja", "pydantic", "psycopg", "opentelemetry", "logging", "json", "didkit")


def stop_and_exit(*, embedded: bool, own_redis: bool) -> None:
    """Stop the embedded servers this run started, then leave without didkit's interpreter-exit crash."""
    if embedded:
        from settings import embedded_pg

        embedded_pg.stop()
    if own_redis:
        from settings import embedded_redis

        embedded_redis.stop()
    os._exit(0)


def v2_score_environ(scorer_id: int, key: str, address: str) -> dict:
    """The WSGI environ of one warm v2 score request (give each call a fresh `wsgi.input`)."""
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/v2/stamps/{scorer_id}/score/{address}",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8400",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_X_API_KEY": key,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }


def seed() -> tuple[int, str, str]:
    from datetime import UTC, datetime, timedelta

    from django.core.management import call_command

    from demo.issuer import demo_issuer_jwk
    from demo.signing import issue_stamp
    from scorer_fast.models import AccountAPIKey
    from tests import factories

    call_command("bootstrap_db", verbosity=0)
    owner = factories.account()
    providers = [f"Provider{i}" for i in range(STAMPS_PER_ADDRESS)]
    community = factories.community(
        owner=owner, weights={p: 2.5 for p in providers}, threshold="20", human_points_program=True
    )
    key = factories.api_key(owner)
    # the rate-limit check runs (flags on) but never answers 429
    AccountAPIKey.objects.filter(prefix=key.split(".")[0]).update(
        rate_limit="1000000000/15m", embed_rate_limit="1000000000/15m"
    )
    address = factories.address_of(1)
    now = datetime.now(UTC).replace(microsecond=0)
    for provider in providers:
        factories.cache_stamp(
            address,
            issue_stamp(
                jwk=demo_issuer_jwk(), address=address, provider=provider, issued=now, expires=now + timedelta(days=30)
            ),
        )
    return community.id, key, address


def by_package(stats: pstats.Stats) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, function), (_cc, _nc, own, _cum, _callers) in stats.stats.items():
        package = next((name for name in PACKAGES if f"/{name}/" in filename or f"/{name}." in filename), None)
        if package is None:
            package = "builtins: " + function.split(" ")[0].strip("<{") if filename == "~" else "other python"
        totals[package] += own
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--flags", choices=("on", "off"), default="on")
    parser.add_argument(
        "--prepared",
        type=int,
        default=None,
        metavar="N",
        help="server-side binding, statements prepared from their N-th execution (settings/database.py)",
    )
    parser.add_argument("--filter", default="", help="only functions whose file:line(name) matches this regex")
    args = parser.parse_args()
    if args.flags == "on":
        os.environ.update(PRODUCTION_FLAGS)
    os.environ.update(DJANGO_SETTINGS_MODULE="settings.base", SCORER_ENV="development")
    embedded = not os.environ.get("DATABASE_URL")
    own_redis = args.flags == "on" and not os.environ.get("CELERY_BROKER_URL")  # settings start an embedded one
    os.environ["DATABASE_URL"] = database_url("scorer_profile")
    if args.prepared is not None:
        separator = "&" if "?" in os.environ["DATABASE_URL"] else "?"
        os.environ["DATABASE_URL"] += f"{separator}server_side_binding=true&prepare_threshold={args.prepared}"

    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application

    scorer_id, key, address = seed()
    application = get_wsgi_application()
    environ = v2_score_environ(scorer_id, key, address)
    statuses = []

    def one_request() -> None:
        response = application(dict(environ, **{"wsgi.input": io.BytesIO(b"")}), lambda s, h: statuses.append(s))
        b"".join(response)
        response.close()

    saved_stderr = os.dup(2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # the access log: one JSON line per request
    try:
        for _ in range(50):
            one_request()
        pg_processes = measure.children(measure.postmaster_pid(Path(os.environ["PGSERVER_DATA"])))
        pg_cpu = measure.cpu_seconds(pg_processes)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.requests):
            one_request()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        pg_cpu_used = measure.cpu_delta(pg_cpu, measure.cpu_seconds(pg_processes))
        profiler = cProfile.Profile(time.process_time)  # CPU, not the wait on PostgreSQL
        profiler.enable()
        for _ in range(args.requests):
            one_request()
        profiler.disable()
        if os.environ.get("PROFILE_DUMP"):
            profiler.dump_stats(os.environ["PROFILE_DUMP"])
    finally:
        os.dup2(saved_stderr, 2)
    assert set(statuses) == {"200 OK"}, set(statuses)
    n = args.requests
    print(
        f"flags {args.flags}: warm v2 score, {n} requests in process: worker CPU {cpu * 1000 / n:.2f} ms/request, "
        f"wall {wall * 1000 / n:.2f} ms/request (the difference is mostly waiting on PostgreSQL); "
        f"PostgreSQL CPU {pg_cpu_used * 1000 / n:.2f} ms/request (embedded server only)\n"
    )
    stats = pstats.Stats(profiler)
    total = sum(own for (_cc, _nc, own, _cum, _callers) in stats.stats.values())
    print(f"own time by package (profiled, {total * 1000 / n:.2f} ms/request with profiler overhead):")
    for package, own in by_package(stats).items():
        print(f"  {package:40} {own * 1000 / n:6.3f} ms/request  {own / total:5.1%}")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.filter, args.top)
        print(out.getvalue())
    sys.stdout.flush()
    stop_and_exit(embedded=embedded, own_redis=own_redis)


if __name__ == "__main__":
    main()
