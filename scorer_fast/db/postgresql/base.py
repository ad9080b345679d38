"""Django's PostgreSQL backend, with a bounded wait for a server and two changes for the hot path:

- a deadline on the database's first answer (`UNAVAILABLE_AFTER_SECONDS`, scorer_fast/db/postgresql/deadline.py):
  behind a transaction pooler a request can otherwise wait without end for a server connection while the
  database refuses them. Bounded are only the round trips that wait for nothing but a server: the reuse ping, a
  new connection's set-up statements, the first statement of a request (its first transaction; not of a
  management command, whose first statement may be a long read) and the opening statement of each durable
  transaction
  (`bound_next_answer()`, scorer_fast/db/transactions.py), never a later statement that may legitimately take long
  (`statement_timeout` bounds those). When it runs out the connection is dropped and an OperationalError raised:
  503 `Database unavailable.`;

- the reuse health check (`CONN_HEALTH_CHECKS`) is skipped for a connection that ran a statement moments ago:
  under load every request would otherwise pay a `SELECT 1` round trip for a connection the previous request just
  used. A connection idle for `HEALTH_CHECK_IDLE_SECONDS` or more is pinged as before;
- `reusable_cursor()`: the scoring statements (scorer_fast/db/sql.py) share one cursor per connection instead of
  creating, wrapping and closing one per statement; on a UTC session it loads timestamptz with psycopg's C loader
  (the same values as Django's Python subclass of it, which only sets the tzinfo, UTC here, after parsing);
- a transaction's `BEGIN` and its opener (`open_transaction_with`: the timeouts and the address lock,
  scorer_fast/db/transactions.py) travel in the message of its first statement, not in round trips of their own:
  psycopg stays in autocommit and the statements go as one simple-query message, which client-side binding (the
  default) allows. A statement declared read-only (`next_statement_only_reads`) even travels with the opener; when
  the lock was not free its answer is dropped and it runs again in the message that waits for the lock (and for
  the next `CONTENDED_SECONDS` that lock's transactions send their read after the opener, not with it). With server-side
  binding (the prepared-statement opt-in) each goes alone, as psycopg would send them.
"""

import datetime
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import psycopg
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, OperationalError, ProgrammingError, connections
from django.db.backends.postgresql import base
from django.db.backends.utils import CursorWrapper
from psycopg import sql as psycopg_sql
from psycopg.pq import TransactionStatus
from psycopg.types.datetime import TimestamptzLoader

from scorer_fast.db.postgresql.deadline import Wait, watchdog

DEFAULT_UNAVAILABLE_AFTER_SECONDS = 2.0


@dataclass(frozen=True)
class Opener:
    """A transaction's opening statement (`sql` with `%s` parameters), under the deadline for the database's first
    answer; its one row's first column says whether it got what it needs without waiting. When it says no,
    `when_refused` (with `refused_params`) is run next, unbounded."""

    sql: str
    params: tuple[Any, ...] = ()
    when_refused: str = ""
    refused_params: tuple[Any, ...] = ()
    # what it waits for (an address lock's key): after a refusal the next opener of that key comes alone for a while
    key: str | None = None

    def literal(self) -> str:
        """For a message whose statement brings parameters of its own."""
        return literal_sql(self.sql, list(self.params))

    def refused_literal(self) -> str:
        """`when_refused` likewise."""
        return literal_sql(self.when_refused, list(self.refused_params))


# An address whose lock was just refused is likely contended again (a burst of requests for it): for this long,
# its transaction's first read is not sent with the opener, where a refusal would make it run twice.
CONTENDED_SECONDS = 5.0
_CONTENDED_KEYS = 1024
_contended: dict[str, float] = {}  # per process, whichever thread's connection saw the refusal: key -> when


def literal_sql(template: str, params: list[Any]) -> str:
    """`template` with each `%s` replaced by its parameter as an SQL literal (for statements sent in one message
    with another statement, which brings its own parameters)."""
    return template % tuple(_literal(param) for param in params)


_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_:.-]*")


def _after(head: str, sql: str, params: Any) -> str:
    """`sql` preceded by `head` (literal statements) in one message; `%` in `head` is escaped when psycopg will
    substitute the statement's parameters."""
    return (head.replace("%", "%%") if params is not None else head) + sql


def _one_message(raw: Any, many: bool) -> bool:
    """Several statements may share the message: one statement sent as a simple query (client-side binding)."""
    return not many and isinstance(raw, psycopg.ClientCursor)


def _literal(param: Any) -> str:
    """Text of letters, digits and `_:.-` (lock keys, timeouts) needs no escaping; psycopg quotes the rest."""
    if isinstance(param, str) and _PLAIN_TEXT.fullmatch(param):
        return f"'{param}'"
    return psycopg_sql.quote(param)


class DatabaseWrapper(base.DatabaseWrapper):
    _last_cursor_at = float("-inf")
    _reusable: CursorWrapper | None = None
    # The next round trip that starts a transaction waits for a server: bound it (set per request and per durable
    # transaction; never outside a request, where a management command's first statement may be a long read).
    _bound_next_answer = False
    _ping_timed_out = False
    _opener: Opener | None = None
    _next_only_reads = False
    _commit_with_next = False
    # the transaction's COMMIT went with its last statement: Django's commit() then has nothing to send
    _committed_early = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(self._open_with_first_statement)

    def bound_next_answer(self, bounded: bool = True) -> None:
        """The next statement opens a transaction and waits for nothing but a server: put it under the deadline."""
        self._bound_next_answer = bounded

    def open_transaction_with(self, opener: Opener) -> None:
        """Send `opener` with the transaction's next statement (or before it, when that one may write), under the
        deadline; the opener and its deadline end with the transaction, even one that sent nothing."""
        self._opener = opener

    def next_statement_only_reads(self) -> None:
        """The next statement writes nothing, so it may travel with the opener and run again after it."""
        self._next_only_reads = True

    def commit_with_next_statement(self) -> None:
        """The next statement is the transaction's last: send its COMMIT in the same message (with client-side
        binding; else Django's commit sends it as usual). A statement that fails skips the COMMIT with it, and the
        transaction is rolled back as before; once it has committed, another statement is a programming error."""
        self._commit_with_next = True

    def _may_commit_with(self, raw: Any, many: bool) -> bool:
        """One statement in one simple-query message, in the outermost atomic block (in a savepoint, a test's
        transaction for one, the COMMIT is not the block's to send)."""
        return self.in_atomic_block and not self.savepoint_ids and _one_message(raw, many)

    def _commit(self) -> None:
        if self._committed_early:
            self._committed_early = False  # sent already, with the transaction's last statement
            return
        super()._commit()

    def _rollback(self) -> None:
        self._committed_early = False  # nothing to undo then: the server ended the transaction
        super()._rollback()

    def _set_autocommit(self, autocommit: bool) -> None:
        """With client-side binding psycopg stays in autocommit: a transaction's BEGIN is sent with its first
        statement (psycopg's commit() and rollback() follow the server's transaction state, not this setting)."""
        self._opener = None
        super()._set_autocommit(autocommit or self._sends_begin_itself())

    def sends_statements_together(self) -> bool:
        """Several statements may go in one message (client-side binding, the default; not the prepared opt-in)."""
        return self._sends_begin_itself()

    def _sends_begin_itself(self) -> bool:
        return self.settings_dict["OPTIONS"].get("server_side_binding") is not True

    def close_if_health_check_failed(self) -> None:
        idle = time.monotonic() - self._last_cursor_at
        if self.connection is not None and idle < self.settings_dict.get("HEALTH_CHECK_IDLE_SECONDS", 0):
            self.health_check_done = True  # used moments ago: a broken link surfaces as a 503, then reconnects
        self._ping_timed_out = False
        super().close_if_health_check_failed()
        if self._ping_timed_out:
            # Django would reconnect and wait again: the pooler that did not answer the ping holds the new
            # connection's first statement just the same. The request's bound is spent.
            raise OperationalError(self._no_answer_message())

    def init_connection_state(self) -> None:
        """A new connection's own statements (Django's `SET TIME ZONE` when the server's differs, a role, an
        isolation level) go through psycopg directly, not the execute wrappers: behind a pooler they wait for a
        server like a first statement, so inside a request they are bounded the same way."""
        if not self._bound_next_answer:
            super().init_connection_state()
            return
        with self._answer_deadline():
            super().init_connection_state()

    def is_usable(self) -> bool:
        if self.connection is None or self.connection.closed:
            return False
        with self._answer_deadline() as wait:
            usable = super().is_usable()
        self._ping_timed_out = wait.expired
        return usable

    def _open_with_first_statement(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        """The first statement of a request or a transaction: under the deadline (it waits for nothing but a
        server), with the transaction's BEGIN and opener in the same message."""
        only_reads, self._next_only_reads = self._next_only_reads, False
        commit, self._commit_with_next = self._commit_with_next, False
        if self._committed_early:
            raise ProgrammingError("a statement after its transaction's COMMIT (commit_with_next_statement)")
        raw = context["cursor"].cursor
        status = self.connection.info.transaction_status
        if commit and status == TransactionStatus.INTRANS and self._may_commit_with(raw, many):
            result = execute(sql + ";\nCOMMIT", params, many, context)
            self._committed_early = True
            return result
        if status != TransactionStatus.IDLE:
            return execute(sql, params, many, context)  # inside a transaction a server is linked already
        opener, self._opener = self._opener, None
        bounded, self._bound_next_answer = self._bound_next_answer or opener is not None, False
        # Django opened a transaction (its own flag) that the server has not started yet
        begin = not self.autocommit and self._sends_begin_itself()
        if not begin and opener is None:
            with self._deadline_if(bounded):
                return execute(sql, params, many, context)
        if not _one_message(raw, many) or (opener is not None and not (only_reads and self._uncontended(opener))):
            with self._deadline_if(bounded):
                refused = self._send_head(begin, opener)
            if refused is not None:
                return self._execute_after_wait(refused, execute, sql, params, many, context)
            return execute(sql, params, many, context)
        head = "".join([*(["BEGIN;\n"] if begin else []), *([opener.literal() + ";\n"] if opener else [])])
        try:
            with self._deadline_if(bounded):
                result = execute(_after(head, sql, params), params, many, context)
                refused = self._skip_head(raw, begin, opener)
        except OperationalError:
            if opener is not None:
                # Cut at the deadline, the read may have waited on a table lock (DDL, VACUUM FULL), not a server: this
                # address's next reads go after the opener, where such a wait is bounded by lock_timeout only.
                self._mark_contended(opener)
            raise
        if refused is None:
            return result
        return self._execute_after_wait(refused, execute, sql, params, many, context)  # the first answer predates it

    def _deadline_if(self, bounded: bool) -> AbstractContextManager[Any]:
        return self._answer_deadline() if bounded else nullcontext()

    def _send_head(self, begin: bool, opener: Opener | None) -> Opener | None:
        """BEGIN (if still to send) and the opener alone, as one message, the opener with its parameters (with
        server-side binding one prepared statement then serves every address); the opener when it was refused."""
        head = ";\n".join([*(["BEGIN"] if begin else []), *([opener.sql] if opener else [])])
        with self.wrap_database_errors, self.connection.cursor() as raw:
            raw.execute(head, opener.params if opener is not None else None)
            return self._skip_head(raw, begin, opener, last=True)

    @staticmethod
    def _skip_head(raw: Any, begin: bool, opener: Opener | None, *, last: bool = False) -> Opener | None:
        """Move `raw` past the results of BEGIN and the opener (to the statement's, unless `last`); the opener when
        it answered no."""
        if begin and opener is not None:
            raw.nextset()  # from BEGIN's result to the opener's
        refused = opener if opener is not None and not raw.fetchone()[0] else None
        if not last:
            raw.nextset()
        return refused

    def forget_contention(self) -> None:
        """Tests: no lock was refused before."""
        _contended.clear()

    @staticmethod
    def _mark_contended(opener: Opener) -> None:
        if opener.key is not None:
            if len(_contended) >= _CONTENDED_KEYS:
                _contended.clear()
            _contended[opener.key] = time.monotonic()

    def _uncontended(self, opener: Opener) -> bool:
        refused_at = _contended.get(opener.key) if opener.key is not None else None
        return refused_at is None or time.monotonic() - refused_at >= CONTENDED_SECONDS

    def _execute_after_wait(
        self,
        refused: Opener,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        """What the opener could not get without waiting, then the statement, neither under the deadline. With
        client-side binding both go in one message: the statement, a statement of its own, takes its snapshot
        (READ COMMITTED) once the wait is over, as it would in a message of its own; when the wait fails (lock
        timeout), the server skips it."""
        self._mark_contended(refused)
        raw = context["cursor"].cursor
        if not _one_message(raw, many):
            with self.wrap_database_errors, self.connection.cursor() as own:
                own.execute(refused.when_refused, refused.refused_params)
            return execute(sql, params, many, context)
        result = execute(_after(refused.refused_literal() + ";\n", sql, params), params, many, context)
        raw.nextset()  # from the wait's result to the statement's
        return result

    @contextmanager
    def _answer_deadline(self) -> Iterator[Wait]:
        """The block's round trip is cut when it has no answer in time; the error it then raises says so."""
        with watchdog.bound(self.connection.fileno(), self._unavailable_after()) as wait:
            try:
                yield wait
            except (DatabaseError, psycopg.Error) as exc:  # Django's, or psycopg's own before Django wraps it
                if wait.expired:
                    raise OperationalError(self._no_answer_message()) from exc
                raise

    def _unavailable_after(self) -> float:
        return self.settings_dict.get("UNAVAILABLE_AFTER_SECONDS", DEFAULT_UNAVAILABLE_AFTER_SECONDS)

    def _no_answer_message(self) -> str:
        return f"no answer from the database within {self._unavailable_after()} s"

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
            self._load_timestamptz_in_c(reusable.cursor)
        else:
            self.validate_thread_sharing()
            self._last_cursor_at = time.monotonic()
        return reusable

    def _load_timestamptz_in_c(self, raw: Any) -> None:
        """Django loads timestamptz with a Python subclass of psycopg's loader that parses in Python, then sets the
        tzinfo to Django's time zone. On a UTC session psycopg's own loader (C, registered by name) gives the same
        datetimes, tzinfo `datetime.timezone.utc` included; anything else keeps Django's."""
        if self.timezone is datetime.UTC and raw.connection.info.parameter_status("TimeZone") == "UTC":
            raw.adapters.register_loader("timestamptz", TimestamptzLoader)


def _bound_the_first_answer_of_each_request(**kwargs: Any) -> None:
    for connection in connections.all():  # this thread's, connected or not yet
        if isinstance(connection, DatabaseWrapper):
            connection.bound_next_answer()


def _unbound_after_the_request(**kwargs: Any) -> None:
    """A request that never reached the database leaves nothing for the statements that follow outside one."""
    for connection in connections.all(initialized_only=True):
        if isinstance(connection, DatabaseWrapper):
            connection.bound_next_answer(False)


request_started.connect(_bound_the_first_answer_of_each_request, dispatch_uid="scorer_fast.db.bound_first_answer")
request_finished.connect(_unbound_after_the_request, dispatch_uid="scorer_fast.db.unbound_after_request")
