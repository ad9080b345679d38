"""`manage.py audit_scores`: recompute stored scores read-only and list every difference (docs/deploy.md)."""

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError
from tqdm import tqdm

from scorer_fast.db import audit as queries
from scorer_fast.db.audit import Selection
from scorer_fast.domain.addresses import normalize_address
from scorer_fast.errors import InvalidAddress
from scorer_fast.services import audit

BAD_ARGUMENTS = 2  # also an unreachable database
UNEXPLAINED = 1


class Command(BaseCommand):
    help = (
        "Recompute stored registry_score rows as scorer_fast would have at their scoring time, read-only, and list "
        "every difference. Exit 0: no unexplained difference; 1: at least one; 2: bad arguments or no database."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("--community", action="append", default=[], metavar="ID", help="repeatable")
        parser.add_argument("--address", action="append", default=[], metavar="ADDR", help="repeatable")
        parser.add_argument("--limit", metavar="N", help="audit at most N stored scores")
        parser.add_argument("--since", metavar="DATETIME", help="last_score_timestamp at or after (ISO 8601, UTC)")
        parser.add_argument("--json", metavar="FILE", help="write the report as JSON")
        parser.add_argument("--batch-size", metavar="N", default=str(audit.BATCH_SIZE), help="rows per transaction")

    def run_from_argv(self, argv):
        """didkit's native runtime may crash the interpreter at exit: leave with the status, after flushing."""
        try:
            super().run_from_argv(argv)
            status = 0
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else UNEXPLAINED
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    def handle(self, *args, **options):
        selection = Selection(
            communities=[_positive(value, "--community") for value in options["community"]],
            addresses=[_address(value) for value in options["address"]],
            since=_since(options["since"]),
        )
        limit = None if options["limit"] is None else _positive(options["limit"], "--limit")
        batch_size = _positive(options["batch_size"], "--batch-size")
        report = Path(options["json"]) if options["json"] else None
        if report is not None and not report.parent.is_dir():
            raise CommandError(f"--json: no such directory: {report.parent}", returncode=BAD_ARGUMENTS)
        try:
            totals, seconds = self._audit(selection, limit=limit, batch_size=batch_size, report=report)
        except (OperationalError, InterfaceError) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CommandError(f"database unreachable: {first_line}", returncode=BAD_ARGUMENTS) from None
        self.stdout.write(summary(totals, seconds))
        if totals.unexplained:
            raise SystemExit(UNEXPLAINED)

    def _audit(
        self, selection: Selection, *, limit: int | None, batch_size: int, report: Path | None
    ) -> tuple[audit.Totals, float]:
        queries.check_reachable()
        missing = queries.missing_communities(selection.communities)
        if missing:
            raise CommandError(f"unknown community: {', '.join(map(str, missing))}", returncode=BAD_ARGUMENTS)
        on_terminal = sys.stderr.isatty()
        total = None
        if on_terminal:
            total = queries.selected_count(selection)
            total = total if limit is None else min(total, limit)
        started = time.monotonic()
        with (
            tqdm(total=total, unit="score", file=sys.stderr, disable=not on_terminal) as progress,
            _DifferenceFile(report) as differences,
        ):
            totals = audit.run(
                selection,
                limit=limit,
                batch_size=batch_size,
                on_difference=differences.add,
                on_progress=progress.update,
            )
            differences.finish(totals)
        return totals, time.monotonic() - started


class _DifferenceFile:
    """The --json report, written with constant memory: differences stream to a temporary file next to the
    report, which becomes the report (header, differences, end) once the audit is done."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lines: Any = None
        self._count = 0

    def __enter__(self) -> "_DifferenceFile":
        if self.path is not None:
            self._lines = tempfile.TemporaryFile("w+", dir=self.path.parent)
        return self

    def add(self, difference: audit.Difference) -> None:
        if self._lines is not None:
            self._lines.write(json.dumps(difference.report(), default=str) + "\n")
            self._count += 1

    def finish(self, totals: audit.Totals) -> None:
        if self._lines is None or self.path is None:
            return
        self._lines.seek(0)
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("w") as out:
            header = {"audited": totals.audited, "equal": totals.equal, "skipped": dict(totals.skipped)}
            out.write(json.dumps(header)[:-1] + ', "differences": [')
            for index, line in enumerate(self._lines):
                out.write(("\n" if index == 0 else ",\n") + line.rstrip("\n"))
            out.write("\n]}\n" if self._count else "]}\n")
        partial.replace(self.path)

    def __exit__(self, *exc: object) -> None:
        if self._lines is not None:
            self._lines.close()


def summary(totals: audit.Totals, seconds: float) -> str:
    rate = totals.audited / seconds if seconds > 0 else 0.0
    different = totals.explained + totals.unexplained
    lines = [
        f"Audited {totals.audited} stored scores in {seconds:.1f} s ({rate:.0f} rows/s): {totals.equal} equal, "
        f"{different} different ({totals.explained} explained, {totals.unexplained} unexplained)."
    ]
    if totals.skipped:
        lines.append(f"Skipped {sum(totals.skipped.values())}: {_counts(totals.skipped)}.")
    if different:
        lines.append(f"Differences by field: {_counts(totals.by_field)}.")
        lines.append(f"Differences by cause: {_counts(totals.by_cause)}.")
        lines.append("First differences:")
        for difference in totals.first:
            verdict = f"explained: {difference.cause}" if difference.explained else "unexplained"
            lines.append(
                f"  {difference.address} community {difference.community_id} score {difference.score_id} "
                f"({', '.join(difference.fields)}): {verdict}"
            )
    return "\n".join(lines)


def _counts(counter: Any) -> str:
    return ", ".join(f"{name} {count}" for name, count in counter.most_common())


def _positive(raw: str, option: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise CommandError(f"{option} must be a positive integer, got {raw!r}", returncode=BAD_ARGUMENTS)
    return value


def _address(raw: str) -> str:
    try:
        return normalize_address(raw.strip())
    except InvalidAddress:
        raise CommandError(f"--address: malformed address {raw!r}", returncode=BAD_ARGUMENTS) from None


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"--since: not an ISO 8601 date or datetime: {raw!r}", returncode=BAD_ARGUMENTS) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
