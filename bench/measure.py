"""What the benchmark measures besides latency, all from outside the service (nothing in its hot path):

- CPU seconds of the gunicorn workers and of PostgreSQL's processes, from /proc/<pid>/stat;
- round trips and address-lock hold time, from PostgreSQL's own statement log, switched on only for a short
  traced pass (`log_min_duration_statement = 0` on the benchmark's private server, then reset).
"""

import os
import re
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# `%m [%p] ` then the duration line; a statement's text may continue on the following lines (not matched).
_DURATION_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \S+ \[(\d+)\] LOG:  duration: [\d.]+ ms  "
    r"(?:statement|execute [^:]*): (.*)$"
)
_LOG_LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:")
LOCK_STATEMENT = "pg_advisory_xact_lock"


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each live process."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND  # fields 14 and 15 of stat(5)
    return seconds


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two samples; a process that appeared meanwhile counts from zero."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def peak_rss_mb(pids: list[int]) -> list[float]:
    """VmHWM of each process, in MB."""
    peaks = []
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            line = next(line for line in status if line.startswith("VmHWM"))
        peaks.append(round(int(line.split()[1]) / 1024, 1))
    return peaks


def children(pid: int | None) -> list[int]:
    if pid is None:
        return []
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []


def postmaster_pid(pgdata: Path | None) -> int | None:
    """The embedded server's postmaster (first line of postmaster.pid); None for an external server."""
    if pgdata is None or not (pgdata / "postmaster.pid").exists():
        return None
    return int((pgdata / "postmaster.pid").read_text().split()[0])


@dataclass
class Trace:
    statements: list[tuple[datetime, int, str]]  # (logged at, backend pid, SQL's first line), in log order

    def round_trips(self) -> int:
        return len(self.statements)

    def lock_holds_ms(self) -> list[float]:
        """From the end of the (first) address-lock statement to the end of that backend's COMMIT/ROLLBACK."""
        holds, locked_at = [], {}
        for at, pid, sql in self.statements:
            if LOCK_STATEMENT in sql:
                locked_at.setdefault(pid, at)
            elif sql.upper().startswith(("COMMIT", "ROLLBACK")) and pid in locked_at:
                holds.append((at - locked_at.pop(pid)).total_seconds() * 1000)
        return holds


class StatementLog:
    """Turns on PostgreSQL's per-statement duration log for the `with` block and collects the lines logged in it.

    Each logged `statement:`/`execute:` line is one round trip (parse/bind lines of the extended protocol travel
    with their execute and are not counted). Timestamps have millisecond resolution, so a lock hold is exact only
    on average. Needs a superuser and the server's log file: the embedded server qualifies."""

    def __init__(self, conn, log_file: Path):
        self.conn, self.log_file = conn, log_file
        self.own_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]

    def _set(self, enabled: bool) -> None:
        if enabled:
            self.conn.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
            self.conn.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] '")
            self.conn.execute("ALTER SYSTEM SET log_parameter_max_length = 0")
        else:
            for name in ("log_min_duration_statement", "log_line_prefix", "log_parameter_max_length"):
                self.conn.execute(f"ALTER SYSTEM RESET {name}")
        self.conn.execute("SELECT pg_reload_conf()")

    def __enter__(self) -> "StatementLog":
        self._set(True)
        return self

    def mark(self) -> None:
        """Start of the counted window (call after a few warm-up requests, once every backend has reloaded)."""
        self.offset = self.log_file.stat().st_size

    def collect(self) -> Trace:
        with self.log_file.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        statements: list[tuple[datetime, int, str]] = []
        text_pending = False  # a statement that starts with a newline: its first words are on a later line
        for line in text.splitlines():
            match = _DURATION_LINE.match(line)
            if match and int(match.group(2)) != self.own_pid:
                at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f")
                statements.append((at, int(match.group(2)), match.group(3).strip()))
                text_pending = not statements[-1][2]
            elif text_pending and line.strip() and not _LOG_LINE_START.match(line):
                at, pid, _ = statements[-1]
                statements[-1] = (at, pid, line.strip())
                text_pending = False
            elif _LOG_LINE_START.match(line):
                text_pending = False
        return Trace(statements)

    def __exit__(self, *exc) -> None:
        self._set(False)


def summary_ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.fmean(values):.2f}/{statistics.median(values):.1f}"
