"""The live stamps this worker last read for an address: a guess, never an answer. A rescore of the address sends
them as the stamps it expects; the statement under the address lock compares their row versions (id and xmin)
with the live rows, and when anything changed the request drops the guess and starts over from a fresh read
(scorer_fast/services/use_cases.py). So a guess can be outdated but never counted: no staleness bound is needed,
only one on memory: the stamps are kept as their stored text (~2 kB each; parsed, one takes ~12 kB), and
parsed again on use, except for the last few addresses, whose parsed stamps are kept too (parsing ten stamps is
the largest single cost of a warm score's Python, ~0.5 ms; an address scored again and again is the common case:
the Passport app polls it). Nothing changes a parsed credential (CachedStamp is frozen and no step writes into
its dict), so one parse can serve many requests."""

from scorer_fast.caching import TtlCache
from scorer_fast.db import ceramic
from scorer_fast.db.scores import KnownStoredStamps
from scorer_fast.domain.credentials import CachedStamp

# An older guess is likely outdated: not worth a transaction that may have to start over.
GUESS_SECONDS = 60
# [provider, stored text, row version] per stamp, as ceramic.SCORING_STAMPS_ARRAY reads them
_seen: TtlCache[str, list[list[str]]] = TtlCache(max_entries=128)
# the same stamps, parsed, for the most recent addresses: ~120 kB each (10 stamps), so at most ~2 MB per worker
PARSED_ADDRESSES = 16
_parsed: TtlCache[str, list[CachedStamp]] = TtlCache(max_entries=PARSED_ADDRESSES)
# What the registry_stamp row versions of an (address, community) hold, by the last scoring that left them alone:
# checked under the lock like the guess (the versions must still match), so it too needs no staleness bound.
_stored: TtlCache[tuple[str, int], KnownStoredStamps] = TtlCache(max_entries=128)


def guess(address: str) -> list[CachedStamp] | None:
    parsed = _parsed.get(address, GUESS_SECONDS)
    if parsed is not None:
        return list(parsed)
    triples = _seen.get(address, GUESS_SECONDS)
    if triples is None:
        return None
    stamps = ceramic.cached_stamps(triples)
    _parsed.put(address, stamps, _parsed.clock(), GUESS_SECONDS)
    return list(stamps)


def remember(address: str, stamps: list[CachedStamp]) -> None:
    """Only stamps read from the database (each with its text and row version) make a guess that can be checked."""
    triples = []
    for stamp in stamps:
        if stamp.text is None or stamp.version is None:
            return
        triples.append([stamp.provider, stamp.text, stamp.version])
    read_at = _seen.clock()
    _seen.put(address, triples, read_at, GUESS_SECONDS)
    _parsed.put(address, list(stamps), read_at, GUESS_SECONDS)


def forget(address: str) -> None:
    _seen.forget(address)
    _parsed.forget(address)


def stored(address: str, community_id: int) -> KnownStoredStamps | None:
    return _stored.get((address, community_id), GUESS_SECONDS)


def remember_stored(address: str, community_id: int, known: KnownStoredStamps) -> None:
    _stored.put((address, community_id), known, _stored.clock(), GUESS_SECONDS)


def forget_stored(address: str, community_id: int) -> None:
    _stored.forget((address, community_id))


def forget_all() -> None:
    """Tests: start from an empty store."""
    _seen.clear()
    _parsed.clear()
    _stored.clear()
