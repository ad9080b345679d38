"""DATABASE_URL → Django DATABASES entry, tuned for many small stateless workers behind a pooler."""

from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured


def _prepared_statements(query: dict[str, str]) -> dict[str, Any]:
    """Opt-in protocol-level prepared statements, from the URL: `?server_side_binding=true&prepare_threshold=N`
    (psycopg prepares a statement on its N-th execution on a connection). Only for a direct connection or a pooler
    that tracks them in transaction mode (pgbouncer >= 1.21 with `max_prepared_statements`); docs/performance.md
    has the measured gain."""
    typed: dict[str, Any] = {}
    if "server_side_binding" in query:
        typed["server_side_binding"] = query["server_side_binding"].lower() in {"1", "true", "on", "yes"}
    if "prepare_threshold" in query:
        raw = query["prepare_threshold"]
        typed["prepare_threshold"] = None if raw.lower() in {"", "none"} else int(raw)
    return typed


def database_from_url(
    url: str,
    *,
    conn_max_age: int,
    connect_timeout: int,
    app_name: str,
    health_check_idle_seconds: float = 0,
    unavailable_after_seconds: float = 2.0,
) -> dict[str, Any]:
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgres:// URL, got scheme {parsed.scheme!r}")
    query: dict[str, Any] = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    host = query.pop("host", None) or (unquote(parsed.hostname) if parsed.hostname else "")
    options: dict[str, Any] = {
        "connect_timeout": connect_timeout,
        "application_name": app_name,
        # By default nothing is prepared server-side: a transaction-pooling proxy (RDS Proxy, pgbouncer before
        # 1.21) may hand the next statement to another server connection.
        "prepare_threshold": None,
        **query,
        **_prepared_statements(query),
    }
    return {
        "ENGINE": "scorer_fast.db.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": str(parsed.port or ""),
        "CONN_MAX_AGE": conn_max_age,
        # A reused connection is pinged first, so workers recover by themselves after a database restart; not
        # when it ran a statement less than HEALTH_CHECK_IDLE_SECONDS ago (scorer_fast/db/postgresql/base.py).
        "CONN_HEALTH_CHECKS": True,
        "HEALTH_CHECK_IDLE_SECONDS": health_check_idle_seconds,
        # Behind a transaction pooler a new transaction waits for a server connection, with no end while the
        # database refuses them: the first answer of a request or transaction not in by then is a 503.
        "UNAVAILABLE_AFTER_SECONDS": unavailable_after_seconds,
        # Server-side cursors need a session-long transaction; poolers in transaction mode break them.
        "DISABLE_SERVER_SIDE_CURSORS": True,
        "OPTIONS": options,
        "TEST": {"NAME": query.get("test_name") or None},
    }
