"""The watchdog that cuts a round trip with no answer (scorer_fast/db/postgresql/deadline.py), on socket pairs:
it is woken only for a wait due before it would wake anyway, so each case here is one it must not sleep through."""

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from scorer_fast.db.postgresql.deadline import Watchdog


@contextmanager
def socket_pair() -> Iterator[socket.socket]:
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.settimeout(5)
        yield ours


def cut_within(sock: socket.socket, seconds: float) -> bool:
    """Whether `sock` reads end-of-file (its shutdown) within `seconds`."""
    started = time.monotonic()
    return sock.recv(1) == b"" and time.monotonic() - started < seconds


@pytest.mark.parametrize("first_wait_seconds", [30.0, 0.05])
def test_a_wait_due_before_the_watchdogs_wake_up_is_cut_on_time(first_wait_seconds):
    """A first wait the thread sleeps for (30 s), or one it has already cut (0.05 s; it then sleeps with no
    timeout): a second wait due in 0.2 s is cut in time either way."""
    watchdog = Watchdog()
    with socket_pair() as first, socket_pair() as second:
        with watchdog.bound(first.fileno(), first_wait_seconds) as first_wait:
            time.sleep(0.2)  # the thread has looked at the first wait: asleep until it is due, or cut it
            assert first_wait.expired is (first_wait_seconds < 0.2)
            with watchdog.bound(second.fileno(), 0.2) as second_wait:
                assert cut_within(second, 2.0)
            assert second_wait.expired and first_wait.expired is (first_wait_seconds < 0.2)


def test_waits_due_after_the_watchdogs_wake_up_are_all_cut_at_their_own_time():
    """The thread is not woken for these (each is due after the earlier one), so it must find them on waking."""
    watchdog = Watchdog()
    with socket_pair() as a, socket_pair() as b, socket_pair() as c:
        with watchdog.bound(a.fileno(), 0.2), watchdog.bound(b.fileno(), 0.4), watchdog.bound(c.fileno(), 0.6):
            started = time.monotonic()
            assert cut_within(a, 2.0) and cut_within(b, 2.0) and cut_within(c, 2.0)
            assert time.monotonic() - started >= 0.5  # c at its own time, not with a
