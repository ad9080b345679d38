"""Sample the gunicorn workers with py-spy while they serve warm v2 scores (one address, production flags on), as
bench/run.py serves them: where the worker CPU of a request goes, without a profiler's own overhead (cProfile,
bench/profile_v2.py, triples the CPU of small calls).
Usage: .venv/bin/python bench/spy_v2.py [--seconds 20] [--concurrency 8] [--workers 4] [--rate 200] [--top 40]
[--raw out.txt]

Prints the worker CPU per request (from /proc) and the share of the samples spent in each function (inclusive: the
function or anything it called; own: the function itself), grouped into the request's phases. Needs py-spy
(requirements/dev.txt) and ptrace rights (root, or kernel.yama.ptrace_scope=0).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("PGSERVER_DATA", str(REPO / ".pgdata-bench"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from run import PRODUCTION_FLAGS, Server, database_url, load, request, seed  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")

# Inclusive phases of a warm v2 score, by a function on the stack (first match from the top of this list wins).
PHASES = (
    ("record_api_usage", "analytics usage row (after the response)"),
    ("enforce_rate_limit", "rate-limit check (Redis)"),
    ("community_of_account", "community + stamps read (before the transaction)"),
    ("check_proofs_ahead", "validity pass before the transaction"),
    ("scoring_snapshot", "snapshot read under the lock"),
    ("_run_pipeline", "validity pass, dedup, score under the lock"),
    ("execute_together", "score + events write"),
    ("run_durable", "transaction: BEGIN, timeouts + lock, COMMIT"),
    ("score_address (scorer_fast/routers/v2.py", "rest of the view (JSON encoding)"),
    ("_get_response (django/core/handlers/base.py", "ninja + Django view machinery"),
    ("RequestContextMiddleware", "request-id, access log, CORS middleware"),
    ("get_response (django/core/handlers/base.py", "Django middleware chain"),
    ("handle_request (gunicorn", "gunicorn + WSGI handler outside Django"),
    ("handle (gunicorn", "gunicorn: accept, parse HTTP, write response"),
)


def user_and_system_seconds(pids: list[int]) -> tuple[float, float]:
    """utime and stime summed over `pids` (/proc/<pid>/stat fields 14 and 15)."""
    user = system = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user += int(fields[11]) / TICKS
        system += int(fields[12]) / TICKS
    return user, system


def phase_of(stack: str) -> str:
    for marker, phase in PHASES:
        if marker in stack:
            return phase
    return "other (worker loop, GC, ...)"


def frame_name(frame: str) -> str:
    """`function (path/to/file.py:line)` → `function (file.py)`, shorter and merged across lines."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", str(REPO) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--raw", help="also keep py-spy's collapsed stacks in this file")
    parser.add_argument(
        "--all-threads-states",
        action="store_true",
        help="sample waiting threads too (wall time); by default only samples holding the GIL (Python's CPU)",
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        sys.exit("py-spy not found: pip install -r requirements/dev.txt")

    url = database_url()
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "settings.base", **PRODUCTION_FLAGS}
    env.update(SECRET_KEY="bench-secret-key-not-for-production-use", SCORER_ENV="development")
    data = seed({**env, "LOG_LEVEL": "WARNING"}, 1)
    community, key, address = data["community"], data["key"], next(iter(data["stamps"]))
    env["CERAMIC_CACHE_SCORER_ID"] = str(community)
    server = Server(env, args.workers)
    server.start()
    raw = Path(args.raw) if args.raw else Path(tempfile.mkstemp(suffix=".txt")[1])
    try:

        def v2_one(_n: int):
            return request("GET", f"/v2/stamps/{community}/score/{address}", headers={"X-API-Key": key})

        load(v2_one, concurrency=args.concurrency, seconds=2)  # every worker warm: caches, verdicts, connections
        assert server.process is not None
        spy = subprocess.Popen(
            [py_spy, "record", "--pid", str(server.process.pid), "--subprocesses", "--format", "raw", "--rate",
             str(args.rate), "--nonblocking", "--output", str(raw), "--duration", str(int(args.seconds) + 30),
             *([] if args.all_threads_states else ["--gil"])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import time

        time.sleep(2)  # py-spy attaches to each worker
        workers = server.worker_pids()
        user_before, system_before = user_and_system_seconds(workers)
        result = load(v2_one, concurrency=args.concurrency, seconds=args.seconds)
        user_after, system_after = user_and_system_seconds(workers)
        user, system = user_after - user_before, system_after - system_before
        spy.send_signal(2)  # SIGINT: py-spy writes what it has and leaves
        spy.wait(60)
    finally:
        server.stop()
    stacks = Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    total = sum(stacks.values()) or 1
    requests = max(result["requests"], 1)
    per_request = (user + system) * 1000 / requests
    print(
        f"\n{result['requests']} warm v2 scores at c={args.concurrency}, {result['rps']} req/s, errors "
        f"{result['errors']}; worker CPU {per_request:.2f} ms/request (user {user * 1000 / requests:.2f}, system "
        f"{system * 1000 / requests:.2f}); {total} py-spy samples\n"
    )
    phases = Counter[str]()
    inclusive, own = Counter[str](), Counter[str]()
    for stack, count in stacks.items():
        frames = [frame_name(frame) for frame in stack.split(";") if frame.strip()]
        phases[phase_of(stack)] += count
        for name in set(frames[1:]):  # the first frame is the process
            inclusive[name] += count
        if frames:
            own[frames[-1]] += count
    print("| phase | share | ≈ ms of worker CPU per request |\n|---|---:|---:|")
    for phase, count in phases.most_common():
        print(f"| {phase} | {count / total:.1%} | {per_request * count / total:.2f} |")
    for title, counter in (("inclusive", inclusive), ("own", own)):
        print(f"\ntop {args.top} functions, {title} (share of samples, ≈ ms per request):")
        for name, count in counter.most_common(args.top):
            print(f"  {count / total:6.1%}  {per_request * count / total:5.2f}  {name}")
    if not args.raw:
        raw.unlink()
    from settings import embedded_pg

    embedded_pg.stop()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
