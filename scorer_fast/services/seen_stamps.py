"""The live stamps this worker last read for an address: a guess, never an answer. A rescore of the address sends
them as the stamps it expects; the statement under the address lock compares their row versions (id and xmin)
with the live rows, and when anything changed the request drops the guess and starts over from a fresh read
(scorer_fast/services/use_cases.py). So a guess can be outdated but never counted: no staleness bound is needed,
only one on memory (a few hundred kB per hundred stamps, parsed)."""

from scorer_fast.caching import TtlCache
from scorer_fast.domain.credentials import CachedStamp

# An older guess is likely outdated: not worth a transaction that may have to start over.
GUESS_SECONDS = 60
_seen: TtlCache[str, list[CachedStamp]] = TtlCache(max_entries=128)


def guess(address: str) -> list[CachedStamp] | None:
    return _seen.get(address, GUESS_SECONDS)


def remember(address: str, stamps: list[CachedStamp]) -> None:
    """Only stamps read from the database (each with its row version) make a guess that can be checked."""
    if all(stamp.version is not None for stamp in stamps):
        _seen.put(address, stamps, _seen.clock(), GUESS_SECONDS)


def forget(address: str) -> None:
    _seen.forget(address)


def forget_all() -> None:
    """Tests: start from an empty store."""
    _seen.clear()
