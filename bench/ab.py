"""Interleaved A/B of bench/run.py: a base checkout and this one, run back to back in turns (ABAB...), so that both
sides see the same machine; prints each round's figures and the medians, worker + PostgreSQL CPU per request side by
side with their ratio. On a machine shared with other work, compare only figures from one such run.
Usage: .venv/bin/python bench/ab.py --base /path/to/base/checkout [--rounds 3] [--base-port 8950]
[--schema-sql ../shared/contract/schema.sql] [-- run.py arguments, default: --workers 4 --flags on --routes v2
--seconds 5]

Each side runs its own bench/run.py with its own .venv and embedded database (`.pgdata-bench` in its checkout);
this side on BENCH_PORT (default 8765), the base on --base-port. Raw outputs go to --out (a temporary folder).
Without `--schema-sql` each side's tables are built from its models, which have no indexes beyond the keys: after
run.py's cold pass (2,000 registry_stamp rows) every warm score then scans registry_stamp, on both sides. With it,
both sides share one embedded server (`.pgdata-bench-schema` in this checkout, one side at a time) whose template1
holds that pg_dump schema, so the database each run.py creates has the production tables and indexes (both
checkouts need the same pgserver release).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RUN_ARGS = ["--workers", "4", "--flags", "on", "--routes", "v2", "--seconds", "5"]
# | route | conc | flags | req/s | p50 ms | p95 ms | p99 ms | errors | worker CPU ms | PG CPU ms |
_ROW = re.compile(
    r"^\| (v2 score[^|]*) \| (\d+) \| (\S+) \| ([\d.]+) \| ([\d.]+) \| [\d.]+ \| [\d.]+ \| (\d+) "
    r"\| ([\d.]+) \| ([\d.]+) \|"
)
_RSS = re.compile(r"peak RSS per worker \(VmHWM\): \[([^\]]*)\]")


def run_side(checkout: Path, port: int, run_args: list[str], out: Path) -> str:
    env = {**os.environ, "BENCH_PORT": str(port)}
    python = checkout / ".venv" / "bin" / "python"
    result = subprocess.run(
        [str(python), "bench/run.py", *run_args], cwd=checkout, env=env, capture_output=True, text=True, timeout=1800
    )
    out.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        sys.exit(f"{checkout}: bench/run.py failed, see {out}")
    return result.stdout


def schema_server(schema_sql: Path) -> Path:
    """This checkout's embedded server for both sides, with `schema_sql` loaded into template1 once; stopped."""
    import psycopg

    data = REPO / ".pgdata-bench-schema"
    os.environ["PGSERVER_DATA"] = str(data)
    sys.path.insert(0, str(REPO))
    from bench.run import url_of_database
    from settings import embedded_pg

    with psycopg.connect(url_of_database(embedded_pg.ensure_running(), "template1"), autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('public.registry_score')").fetchone() == (None,):
            conn.execute(schema_sql.read_text(encoding="utf-8"))
    embedded_pg.stop()
    return data


def figures(output: str) -> dict[str, dict[str, float]]:
    """Per '<route>, c=<n>': req/s, p50, errors, worker and PG CPU per request; and peak RSS."""
    found: dict[str, dict[str, float]] = {}
    for line in output.splitlines():
        if match := _ROW.match(line):
            route, conc, _flags, rps, p50, errors, worker, pg = match.groups()
            found[f"{route}, c={conc}"] = {
                "rps": float(rps),
                "p50": float(p50),
                "errors": float(errors),
                "worker": float(worker),
                "pg": float(pg),
                "total": float(worker) + float(pg),
            }
        elif match := _RSS.search(line):
            found["peak RSS"] = {"max MB": max(float(value) for value in match.group(1).split(","))}
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=Path, required=True, help="the base checkout (with its own .venv)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base-port", type=int, default=8950)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--schema-sql", type=Path, help="both sides on this pg_dump schema (the production tables)")
    args, rest = parser.parse_known_args()
    if args.schema_sql is not None:
        print(f"both sides on {args.schema_sql}, server data in {schema_server(args.schema_sql)}", flush=True)
    run_args = [arg for arg in rest if arg != "--"] or DEFAULT_RUN_ARGS
    out = args.out or Path(tempfile.mkdtemp(prefix="scorer_fast_ab_"))
    out.mkdir(parents=True, exist_ok=True)
    sides = {"base": (args.base.resolve(), args.base_port), "this": (REPO, int(os.environ.get("BENCH_PORT", "8765")))}
    results: dict[str, list[dict[str, dict[str, float]]]] = {"base": [], "this": []}
    print(f"bench/run.py {' '.join(run_args)}; base {sides['base'][0]}, this {REPO}; raw outputs in {out}", flush=True)
    for number in range(1, args.rounds + 1):
        for side, (checkout, port) in sides.items():
            found = figures(run_side(checkout, port, run_args, out / f"{side}-{number}.txt"))
            results[side].append(found)
            summary = "; ".join(
                f"{name}: {row['worker']} + {row['pg']} = {row['total']:.2f} ms"
                for name, row in found.items()
                if "total" in row
            )
            print(f"round {number} {side}: {summary}", flush=True)
    print(f"\nmedians of {args.rounds} interleaved rounds (worker + PostgreSQL CPU ms per request):\n")
    print("| figure | base | this | this / base |\n|---|---:|---:|---:|")
    for name in results["base"][0]:
        if name == "peak RSS":
            continue

        def median(side: str, key: str, name: str = name) -> float:
            return statistics.median(found[name][key] for found in results[side])

        base = f"{median('base', 'worker'):.2f} + {median('base', 'pg'):.2f} = {median('base', 'total'):.2f}"
        this = f"{median('this', 'worker'):.2f} + {median('this', 'pg'):.2f} = {median('this', 'total'):.2f}"
        print(f"| {name}: CPU | {base} | {this} | {median('this', 'total') / median('base', 'total'):.0%} |")
        print(f"| {name}: req/s | {median('base', 'rps')} | {median('this', 'rps')} | |")
        print(f"| {name}: p50 ms | {median('base', 'p50')} | {median('this', 'p50')} | |")
        errors = [found[name]["errors"] for side in results.values() for found in side]
        if any(errors):
            print(f"| {name}: errors (all rounds) | | {sum(errors):g} | |")
    rss = {
        side: max(found["peak RSS"]["max MB"] for found in runs if "peak RSS" in found)
        for side, runs in results.items()
    }
    print(f"| peak RSS per worker, max MB | {rss['base']} | {rss['this']} | |")


if __name__ == "__main__":
    main()
