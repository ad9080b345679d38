"""The one way a request writes: a durable transaction with bounded waits, retried when another writer wins.

The original service writes the same tables without our advisory locks, so a foreign commit can land between
two of our statements: a unique violation (it inserted the row we were about to insert), a deadlock or a
serialization failure. None of these is the client's fault or a server error: the whole transaction is rolled
back and run again, and the next attempt reads the foreign row like any other.
"""

import logging
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction

from scorer_fast.db import scores, sql
from scorer_fast.db.postgresql.base import Opener
from scorer_fast.errors import DatabaseBusy

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSACTION_ATTEMPTS = 3
# unique violation, serialization failure, deadlock
RETRYABLE_SQLSTATES = frozenset({"23505", "40001", "40P01"})


def sqlstate(exc: DatabaseError) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None)


def run_durable(work: Callable[[], T], *, lock_address: str | None = None) -> T:
    """Run `work` in one durable transaction (all or nothing) with the configured statement and lock timeouts,
    holding the address lock of `lock_address` when given; retry it from the start when a concurrent writer made
    it fail."""
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            with transaction.atomic(durable=True):
                _start(lock_address)
                return work()
        except sql.ProbeFound as exc:
            if attempt == TRANSACTION_ATTEMPTS:
                logger.warning("rows changed by another writer on every attempt")
                raise DatabaseBusy() from exc
            logger.info("rows changed by another writer, retrying", extra={"attempt": attempt})
        except (IntegrityError, OperationalError) as exc:
            if sqlstate(exc) not in RETRYABLE_SQLSTATES:
                raise
            if attempt == TRANSACTION_ATTEMPTS:
                # Still losing to other writers: a retryable condition, so 503 and nothing written, not a 500.
                logger.warning("write conflicts outlasted every retry", extra={"sqlstate": sqlstate(exc)})
                raise DatabaseBusy() from exc
            logger.info(
                "write conflict with another writer, retrying", extra={"attempt": attempt, "sqlstate": sqlstate(exc)}
            )
    raise AssertionError("unreachable")  # the last attempt returns or raises


def _start(lock_address: str | None) -> None:
    """Bound every statement and lock wait of the transaction (SET LOCAL semantics: nothing leaks to the next
    client of a pooled connection, and no startup option a transaction pooler might refuse), then take the address
    lock if it is free. That opener travels with BEGIN in the message of the transaction's first statement (or just
    before it, when the statement may write) and waits for nothing but a server, so it runs under the deadline for
    the database's first answer (scorer_fast/db/postgresql/base.py). A lock held by another request is then waited
    for in a statement of its own, bounded by lock_timeout. The timeouts are set in a subquery, so they apply to the
    lock of the same statement (`OFFSET 0` keeps the planner from folding it into the projection)."""
    timeouts = [f"{settings.DB_STATEMENT_TIMEOUT_MS}ms", f"{settings.DB_LOCK_TIMEOUT_MS}ms"]
    set_timeouts = "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true) OFFSET 0"
    if lock_address is None:
        connection.open_transaction_with(Opener(f"SELECT true FROM ({set_timeouts}) t", tuple(timeouts)))
        return
    key = scores.lock_key(lock_address)
    connection.open_transaction_with(  # our backend (scorer_fast/db/postgresql/base.py)
        Opener(
            f"SELECT {scores.ADDRESS_LOCK_IF_FREE} FROM ({set_timeouts}) timeouts",
            (key, *timeouts),
            when_refused=f"SELECT {scores.ADDRESS_LOCK}",
            refused_params=(key,),
            key=key,
        )
    )
