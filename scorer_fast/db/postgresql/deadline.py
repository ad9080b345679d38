"""A deadline on waiting for the database's first answer, for when a transaction pooler queues us.

Behind pgbouncer or RDS Proxy in transaction mode the pooler accepts the client, then holds each new transaction
until it can link a server connection: while the database refuses connections, the query sits in the pooler's
queue and psycopg waits in a read with no end. A server-side `statement_timeout` cannot help (the server never sees
the query), and a cancel request does not either: pgbouncer 1.18 drops the cancel of a client that is not linked
to a server ("cancel request for idle client") and leaves the query queued.

So one watchdog thread per process shuts the socket of a connection down when a bounded wait runs out
(`socket.shutdown` on libpq's descriptor): libpq reads end-of-file and fails the call with an OperationalError,
Django drops that connection, the request is answered 503 and the next one reconnects. Which waits are bounded
(only ones that wait for nothing but a server) is decided in scorer_fast/db/postgresql/base.py; docs/decisions.md.
"""

import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(eq=False)
class Wait:
    fd: int
    due: float
    expired: bool = False


class Watchdog:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waits: list[Wait] = []
        self._thread: threading.Thread | None = None
        # When the thread looks at the waits next on its own (inf: only when woken). A new wait due later needs
        # no wake-up: waking a thread for every round trip costs the request more than the wait it watches.
        self._wakes_at = math.inf

    @contextmanager
    def bound(self, fd: int, seconds: float) -> Iterator[Wait]:
        """Shut the socket `fd` down if the block has not ended within `seconds`; `wait.expired` tells whether it
        was. The owner's exit waits for a shutdown in progress, so the descriptor is never touched once closed."""
        wait = Wait(fd, time.monotonic() + seconds)
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-answer-deadline", daemon=True)
                self._thread.start()
            self._waits.append(wait)
            if wait.due < self._wakes_at:
                self._changed.notify()
        try:
            yield wait
        finally:
            with self._changed:
                self._waits.remove(wait)

    def _run(self) -> None:
        with self._changed:
            while True:
                pending = [wait for wait in self._waits if not wait.expired]
                if not pending:
                    self._sleep_until(math.inf)
                    continue
                now = time.monotonic()
                due = min(wait.due for wait in pending)
                if due > now:
                    self._sleep_until(due)
                    continue
                for wait in pending:
                    if wait.due <= now:
                        wait.expired = True
                        _shut_down(wait.fd)

    def _sleep_until(self, wakes_at: float) -> None:
        """Called with the lock held; `bound` wakes the thread earlier for a wait due before `wakes_at`."""
        self._wakes_at = wakes_at
        self._changed.wait(None if wakes_at == math.inf else wakes_at - time.monotonic())
        self._wakes_at = -math.inf  # awake: the thread looks at every wait before it sleeps again

    def _after_fork(self) -> None:
        """A forked child (a gunicorn worker of a preloading master) has no watchdog thread: start afresh."""
        self.__init__()  # type: ignore[misc]


def _shut_down(fd: int) -> None:
    """Both directions of the socket behind `fd`, through a duplicate descriptor (shutdown acts on the socket,
    not the descriptor): libpq keeps its own descriptor and finds it at end-of-file."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side


watchdog = Watchdog()
os.register_at_fork(after_in_child=watchdog._after_fork)
