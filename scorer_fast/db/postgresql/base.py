"""Django's PostgreSQL backend, with two changes for the hot path:

- the reuse health check (`CONN_HEALTH_CHECKS`) is skipped for a connection that ran a statement moments ago:
  under load every request would otherwise pay a `SELECT 1` round trip for a connection the previous request just
  used. A connection idle for `HEALTH_CHECK_IDLE_SECONDS` or more is pinged as before;
- `reusable_cursor()`: the scoring statements (scorer_fast/db/sql.py) share one cursor per connection instead of
  creating, wrapping and closing one per statement.
"""

import time

from django.db.backends.postgresql import base
from django.db.backends.utils import CursorWrapper


class DatabaseWrapper(base.DatabaseWrapper):
    _last_cursor_at = float("-inf")
    _reusable: CursorWrapper | None = None

    def close_if_health_check_failed(self) -> None:
        idle = time.monotonic() - self._last_cursor_at
        if self.connection is not None and idle < self.settings_dict.get("HEALTH_CHECK_IDLE_SECONDS", 0):
            self.health_check_done = True  # used moments ago: a broken link surfaces as a 503, then reconnects
        super().close_if_health_check_failed()

    def create_cursor(self, name=None):
        self._last_cursor_at = time.monotonic()
        return super().create_cursor(name)

    def reusable_cursor(self) -> CursorWrapper:
        """What `cursor()` gives (health check, connect, error wrapping), kept open for the next statement while
        the connection stays the same. While queries are being logged (tests, DEBUG) every call gets a fresh
        debug cursor, so each statement is still recorded."""
        if self.queries_logged:
            return self.cursor()
        self.close_if_health_check_failed()
        reusable = self._reusable
        if (
            reusable is None
            or self.connection is None
            or reusable.cursor.closed
            or (reusable.cursor.connection is not self.connection)
        ):
            reusable = self._reusable = self.cursor()
        else:
            self.validate_thread_sharing()
            self._last_cursor_at = time.monotonic()
        return reusable
