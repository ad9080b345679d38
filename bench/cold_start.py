"""Cold start, both roles of the image, and the Lambda process's peak memory.

(a) Lambda: `python -m awslambdaric scorer_fast.lambda_handler.handler` against the Runtime API stub
    (tests/lambda_runtime.py): process start → init done (first `next` request) → first invocation answered
    (a v2 score whose 10 proofs are new to the process).
(b) gunicorn (`gunicorn.conf.py`, one sync worker): process start → first answered v2 score request.
Each with `python -X importtime`'s largest costs (self time summed per top-level package), and (c) the peak RSS
(VmHWM) of one Lambda process serving a scenario over every seeded address (v2 score, embed POST, embed GET,
ceramic-cache GET score).

Usage: .venv/bin/python bench/cold_start.py [--runs 5] [--addresses 20]
Database: DATABASE_URL when set, else the embedded server in .pgdata-bench (the database `scorer_bench` is
created anew, as by bench/run.py).
"""

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import measure  # noqa: E402
from bench.run import STAMPS_PER_ADDRESS, database_url, hs256_token, seed  # noqa: E402
from tests.lambda_events import HttpRequest, event  # noqa: E402
from tests.lambda_runtime import free_port, lambda_process, serve_stub  # noqa: E402

IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def largest_import_costs(stderr: str, top: int = 8) -> list[tuple[str, float]]:
    """Self time of every imported module, summed per top-level package (ms), largest first."""
    per_package: Counter[str] = Counter()
    for line in stderr.splitlines():
        if match := IMPORT_LINE.match(line):
            per_package[match.group(4).split(".")[0]] += int(match.group(1)) / 1000
    return [(name, round(ms, 1)) for name, ms in per_package.most_common(top)]


def lambda_cold_start(env: dict, first_event: dict, python_args: tuple[str, ...] = ()) -> tuple[float, float, str]:
    """(init ms, first answer ms, output) of one fresh Lambda process."""
    with tempfile.TemporaryFile() as log, serve_stub([first_event]) as (stub, runtime_api):
        started = time.perf_counter()
        with lambda_process(runtime_api, env, log, python_args):
            [answer] = stub.wait_for_answers(1, timeout=120)
        log.seek(0)
        output = log.read().decode(errors="replace")
    if answer.kind != "response" or answer.payload.get("statusCode") != 200:
        raise RuntimeError(f"first invocation failed: {answer.payload}\n{output[-2000:]}")
    return (stub.first_poll_at - started) * 1000, (answer.at - started) * 1000, output


def lambda_peak_memory(env: dict, events: list[dict]) -> tuple[float, Counter]:
    """VmHWM (MB) of one Lambda process after it answered every event, and the status codes it answered."""
    with tempfile.TemporaryFile() as log, serve_stub(events) as (stub, runtime_api):
        with lambda_process(runtime_api, env, log) as process:
            answers = stub.wait_for_answers(len(events), timeout=600)
            (peak_mb,) = measure.peak_rss_mb([process.pid])
    return peak_mb, Counter(answer.payload.get("statusCode") for answer in answers)


def gunicorn_cold_start(env: dict, path: str, headers: dict, python_args: tuple[str, ...] = ()) -> tuple[float, str]:
    """(process start → first answered request, ms; stderr) of gunicorn with one sync worker."""
    port = free_port()
    server_env = {**env, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"}
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [
                sys.executable,
                *python_args,
                "-m",
                "gunicorn",
                "--config",
                "gunicorn.conf.py",
                "scorer_fast.wsgi:application",
            ],
            env=server_env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    conn.request("GET", path, headers=headers)
                    status = conn.getresponse().status
                    break
                except OSError:
                    if process.poll() is not None:
                        raise RuntimeError("gunicorn exited") from None
                    time.sleep(0.005)
            answered = time.perf_counter()
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        log.seek(0)
        output = log.read().decode(errors="replace")
    if status != 200:
        raise RuntimeError(f"first request answered {status}")
    return (answered - started) * 1000, output


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):7.0f} ms   (min {min(values):.0f}, max {max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--addresses", type=int, default=20)
    args = parser.parse_args()

    secret = "bench-secret-key-not-for-production-use"
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "settings.base"}
    env.update(SECRET_KEY=secret, LOG_LEVEL="WARNING", SCORER_ENV="development")
    env.pop("AWS_LAMBDA_RUNTIME_API", None)
    print(f"seeding {args.addresses} addresses x {STAMPS_PER_ADDRESS} signed stamps ...", flush=True)
    data = seed(env, max(args.addresses, 2 * args.runs + 1))
    community, key, stamps = data["community"], data["key"], data["stamps"]
    env["CERAMIC_CACHE_SCORER_ID"] = str(community)
    addresses = list(stamps)
    api_key = [("x-api-key", key)]

    def v2_score(address: str) -> HttpRequest:
        return HttpRequest("GET", f"/v2/stamps/{community}/score/{address}", headers=api_key)

    # Each cold run scores an address no process has seen (its 10 proofs are verified for the first time).
    fresh = iter(addresses)
    inits, firsts = [], []
    for _ in range(args.runs):
        init_ms, first_ms, _ = lambda_cold_start(env, event(v2_score(next(fresh)), "apigw-v2"))
        inits.append(init_ms)
        firsts.append(first_ms)
    _, _, lambda_imports = lambda_cold_start(env, event(v2_score(next(fresh)), "alb"), ("-X", "importtime"))

    boots = []
    for _ in range(args.runs):
        address = next(fresh, addresses[0])
        boot_ms, _ = gunicorn_cold_start(env, v2_score(address).path, {"X-API-Key": key})
        boots.append(boot_ms)
    _, gunicorn_imports = gunicorn_cold_start(
        env, v2_score(addresses[0]).path, {"X-API-Key": key}, ("-X", "importtime")
    )

    scenario = []
    for address in addresses[: args.addresses]:
        body = json.dumps({"scorer_id": community, "stamps": stamps[address][:3]}).encode()
        token = [("authorization", f"Bearer {hs256_token(address, secret)}")]
        scenario += [
            event(v2_score(address), "apigw-v2"),
            event(HttpRequest("POST", f"/internal/embed/stamps/{address}", body=body), "alb"),
            event(HttpRequest("GET", f"/internal/embed/score/{community}/{address}"), "alb-multi"),
            event(HttpRequest("GET", f"/ceramic-cache/score/{address}", headers=token), "alb"),
        ]
    peak_mb, statuses = lambda_peak_memory(env, scenario)

    print(f"\n{os.cpu_count()} cores, {args.runs} runs each, Python {sys.version.split()[0]}\n")
    print(f"Lambda init (process start → runtime polls for the first event):  {summary(inits)}")
    print(f"Lambda process start → first invocation answered (v2 score):     {summary(firsts)}")
    print(f"gunicorn process start → first answered request (v2 score):       {summary(boots)}")
    print(f"\nLambda peak RSS (VmHWM) after {len(scenario)} invocations over {args.addresses} addresses: {peak_mb} MB")
    print(f"  answers by status: {dict(statuses)}")
    for role, output in (("Lambda", lambda_imports), ("gunicorn (master + worker)", gunicorn_imports)):
        costs = ", ".join(f"{name} {ms}" for name, ms in largest_import_costs(output))
        print(f"\nlargest import costs, {role} (ms of self time per package, -X importtime): {costs}")
    if not os.environ.get("DATABASE_URL"):
        from settings import embedded_pg

        embedded_pg.stop()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
