"""Django's PostgreSQL backend, with the reuse health check (`CONN_HEALTH_CHECKS`) skipped for a connection that
ran a statement moments ago: under load every request would otherwise pay a `SELECT 1` round trip for a connection
the previous request just used. A connection idle for `HEALTH_CHECK_IDLE_SECONDS` or more is pinged as before."""

import time

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    _last_cursor_at = float("-inf")

    def close_if_health_check_failed(self) -> None:
        idle = time.monotonic() - self._last_cursor_at
        if self.connection is not None and idle < self.settings_dict.get("HEALTH_CHECK_IDLE_SECONDS", 0):
            self.health_check_done = True  # used moments ago: a broken link surfaces as a 503, then reconnects
        super().close_if_health_check_failed()

    def create_cursor(self, name=None):
        self._last_cursor_at = time.monotonic()
        return super().create_cursor(name)
