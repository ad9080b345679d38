"""Rows per second of `manage.py audit_scores` on N stored scores (default 10,000) written in the original's row
formats, each with its own signed stamps, on a fresh database; prints the rate and the audit process's peak RSS
for a sample and for the whole table (memory does not grow with the rows audited).
Usage: .venv/bin/python bench/audit.py [--scores 10000] [--stamps 3] [--batch-size 200] [--schema-sql FILE]

It uses DATABASE_URL when set, else the embedded server (own data folder .pgdata-bench); the database
`scorer_audit_bench` is created anew each run. The audit runs in production mode (SCORER_ENV unset) as a child
process with a cold verified-proof cache, as it would against a replica: every proof is new to it.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import database_url  # noqa: E402

os.environ.setdefault("PGSERVER_DATA", str(REPO / ".pgdata-bench"))


def seed(env: dict, scores: int, stamps: int, schema: str | None) -> None:
    """Bootstrap the schema, then per address `stamps` signed ceramic-cache rows and a stored score written the
    way the original writes it (tests/original_rows.py), in a child process with Django set up."""
    code = f"""
import django, os
django.setup()
from datetime import UTC, datetime, timedelta
from django.core.management import call_command
from django.db import transaction
from pathlib import Path
call_command("bootstrap_db", schema_sql=Path({schema!r}) if {schema!r} else None, stdout=open(os.devnull, "w"))
from tests import factories
from tests.credentials import signed_stamp
from tests.original_rows import ceramic_row, score_like_the_original
providers = [f"Provider{{i}}" for i in range({stamps})]
weights = {{p: 2.5 for p in providers}}
community = factories.community(weights=weights, threshold="5")
at = datetime.now(UTC) - timedelta(minutes=30)
for n in range({scores}):
    address = "0x" + f"{{n + 1:040x}}"
    credentials = [signed_stamp(address, provider) for provider in providers]
    with transaction.atomic():
        for credential in credentials:
            ceramic_row(address, credential, created_at=at - timedelta(minutes=1))
        score_like_the_original(address, community.id, at=at, weights=weights, threshold="5", kept=credentials)
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True)


def audit(env: dict, *args: str) -> dict:
    """One audit in a child process: its wall time, peak RSS, and the report."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "manage.py", "audit_scores", "--json", str(report), *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"audit exited {done.returncode}: {done.stderr or done.stdout}")
        body = json.loads(report.read_text())
    # ru_maxrss of the largest child so far: the runs go from the smallest to the largest
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "audited": body["audited"], "equal": body["equal"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scores", type=int, default=10_000)
    parser.add_argument("--stamps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument(
        "--schema-sql",
        default=os.environ.get("SCORER_SCHEMA_SQL"),
        help="the production schema (pg_dump) to load, with its indexes; default SCORER_SCHEMA_SQL, else the models",
    )
    args = parser.parse_args()
    url = database_url("scorer_audit_bench")
    import didkit

    from tests.credentials import EIP712_ISSUER_JWK  # the trusted test issuer (production refuses the demo one)

    issuer = didkit.key_to_did("ethr", EIP712_ISSUER_JWK)
    seed_env = {
        **os.environ,
        "DATABASE_URL": url,
        "SCORER_ENV": "development",
        "DJANGO_SETTINGS_MODULE": "settings.base",
    }
    started = time.monotonic()
    seed(seed_env, args.scores, args.stamps, args.schema_sql)
    schema = args.schema_sql or "the models' tables (no address index on ceramic_cache_ceramiccache: slower)"
    print(
        f"seeded {args.scores} stored scores x {args.stamps} stamps in {time.monotonic() - started:.0f} s on {schema}"
    )
    env = {name: value for name, value in os.environ.items() if name != "SCORER_ENV"}
    env |= {"DATABASE_URL": url, "TRUSTED_IAM_ISSUERS": json.dumps([issuer])}
    sample = min(1_000, args.scores)
    print("| audited | equal | seconds | rows/s | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    for extra in (["--limit", str(sample)], []):
        run = audit(env, "--batch-size", str(args.batch_size), *extra)
        rate = run["audited"] / run["seconds"]
        print(f"| {run['audited']} | {run['equal']} | {run['seconds']:.1f} | {rate:.0f} | {run['peak_mb']:.0f} |")
    print(f"a million stored scores: about {1_000_000 / rate / 3600:.1f} h at {rate:.0f} rows/s (one process)")
    os._exit(0)


if __name__ == "__main__":
    main()
