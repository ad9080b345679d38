"""PostgreSQL's side of a warm v2 score: every statement one request sends, with its planning and execution time
from `EXPLAIN (ANALYZE, BUFFERS, SUMMARY)` (median of several runs each; writes run inside a transaction that is
rolled back). Usage: .venv/bin/python bench/explain_v2.py [--runs 20] [--flags on|off] [--plans]

Runs in one process against its own embedded server (.pgdata-explain) or DATABASE_URL, seeded like
bench/profile_v2.py. Nothing is prepared (prepare_threshold=None, as in production), so each statement is parsed
and planned on every execution: the planning column is what each request pays for it.
"""

import argparse
import io
import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("PGSERVER_DATA", str(REPO / ".pgdata-explain"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from profile_v2 import seed, stop_and_exit, v2_score_environ  # noqa: E402
from run import PRODUCTION_FLAGS, database_url  # noqa: E402


def _backend_cpu_ms(cursor, backend: int, text: str, runs: int) -> float:
    """Backend CPU per `BEGIN; text; ROLLBACK`, from /proc (parse, plan, execute and the protocol, all counted)."""
    from bench import measure

    before = measure.cpu_seconds([backend])[backend]
    for _ in range(runs):
        cursor.execute("BEGIN")
        if text:
            cursor.execute(text)
        cursor.execute("ROLLBACK")
    return (measure.cpu_seconds([backend])[backend] - before) * 1000 / runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--flags", choices=("on", "off"), default="on")
    parser.add_argument("--cpu-runs", type=int, default=300)
    parser.add_argument("--plans", action="store_true", help="print each statement's plan once")
    args = parser.parse_args()
    if args.flags == "on":
        os.environ.update(PRODUCTION_FLAGS)
    os.environ.update(DJANGO_SETTINGS_MODULE="settings.base", SCORER_ENV="development", LOG_LEVEL="WARNING")
    embedded = not os.environ.get("DATABASE_URL")
    own_redis = args.flags == "on" and not os.environ.get("CELERY_BROKER_URL")
    os.environ["DATABASE_URL"] = database_url("scorer_explain")

    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    scorer_id, key, address = seed()
    application = get_wsgi_application()
    environ = v2_score_environ(scorer_id, key, address)

    def one_request() -> None:
        response = application(dict(environ, **{"wsgi.input": io.BytesIO(b"")}), lambda s, h: None)
        b"".join(response)
        response.close()

    for _ in range(20):
        one_request()
    captured: list[str] = []

    def capture(execute, sql, params, many, context):
        # a transaction's first message also carries its BEGIN and opener, its last write its COMMIT, joined by ";\n"
        # (scorer_fast/db/postgresql/base.py): each statement is explained on its own
        sent = context["cursor"].cursor.mogrify(sql, params)
        captured.extend(part for part in sent.split(";\n") if part.strip() not in ("BEGIN", "COMMIT"))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        one_request()

    if dump := os.environ.get("EXPLAIN_DUMP"):
        for number, text in enumerate(captured, 1):
            Path(dump, f"{number}.sql").write_text(text)
    timings: list[tuple[str, float, float]] = []
    with connection.cursor() as cursor:
        for text in captured:
            planning, execution = [], []
            for run in range(args.runs):
                cursor.execute("BEGIN")
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, SUMMARY, FORMAT JSON) " + text)
                plan = cursor.fetchone()[0]
                cursor.execute("ROLLBACK")
                plan = plan[0] if isinstance(plan, list) else __import__("json").loads(plan)[0]
                planning.append(plan["Planning Time"])
                execution.append(plan["Execution Time"])
                if run == 0 and args.plans:
                    cursor.execute("BEGIN")
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, SUMMARY) " + text)
                    print("\n".join(row[0] for row in cursor.fetchall()), "\n")
                    cursor.execute("ROLLBACK")
            timings.append((text, statistics.median(planning), statistics.median(execution)))
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
        cpu_ms = [_backend_cpu_ms(cursor, backend, text, args.cpu_runs) for text in ["", *captured]]
    print(f"flags {args.flags}: {len(captured)} statements (besides BEGIN/COMMIT), median of {args.runs} runs each;")
    print(f"backend CPU: /proc of the backend over {args.cpu_runs} runs, minus an empty BEGIN/ROLLBACK\n")
    print("| # | statement | planning ms | execution ms | backend CPU ms |")
    print("|---:|---|---:|---:|---:|")
    for number, (text, planning, execution) in enumerate(timings, 1):
        first = " ".join(text.split())[:70]
        print(f"| {number} | `{first}` | {planning:.3f} | {execution:.3f} | {cpu_ms[number] - cpu_ms[0]:.3f} |")
    total_planning = sum(t[1] for t in timings)
    total_execution = sum(t[2] for t in timings)
    total_cpu = sum(cpu_ms[1:]) - len(timings) * cpu_ms[0]
    print(f"| | total | {total_planning:.3f} | {total_execution:.3f} | {total_cpu:.3f} |")
    print(f"\nan empty BEGIN/ROLLBACK pair: {cpu_ms[0]:.3f} ms of backend CPU")
    sys.stdout.flush()
    connection.close()
    stop_and_exit(embedded=embedded, own_redis=own_redis)


if __name__ == "__main__":
    main()
