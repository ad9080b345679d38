"""didkit proof verification, driven from synchronous code.

didkit's functions are coroutines that need a running loop. Each worker thread keeps one event loop for its
whole life (no loop per request), and a request's credentials are verified concurrently on it. Verdicts are
cached per process: a proof's validity never changes, so an unchanged stamp is verified once per worker.
"""

import asyncio
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from typing import Any

import didkit

from scorer_fast.domain.credentials import CachedStamp

logger = logging.getLogger(__name__)
_PROOF_OPTIONS = json.dumps({"proofPurpose": "assertionMethod"})
_thread_state = threading.local()


def thread_loop() -> asyncio.AbstractEventLoop:
    loop = getattr(_thread_state, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread_state.loop = loop
    return loop


async def _verify_documents(documents: list[str]) -> list[Any]:
    return await asyncio.gather(
        *(didkit.verify_credential(document, _PROOF_OPTIONS) for document in documents), return_exceptions=True
    )


def _verdict(result: Any) -> bool | None:
    """True or False when didkit answered; None when it raised or panicked (junk input such as a malformed
    proofValue): the stamp is invalid for this request, but that is no verdict on the proof to remember."""
    if isinstance(result, BaseException):
        logger.warning("proof verification raised", extra={"error_type": type(result).__name__})
        return None
    try:
        return not json.loads(result)["errors"]
    except (TypeError, ValueError, KeyError):
        return None


def proof_key(credential: dict[str, Any]) -> bytes:
    """The whole signed document, not just its proof: a credential whose fields were changed under a valid
    proofValue is another document and must be verified on its own. Keys sorted: a credential read back from
    jsonb (which reorders keys) is the same document as the one submitted."""
    return hashlib.sha256(json.dumps(credential, sort_keys=True).encode()).digest()


def stored_key(text: str) -> bytes:
    """The key of a credential read from the database, from jsonb's own text of it: PostgreSQL writes one text per
    jsonb value (keys in its order, fixed spacing), so equal texts are the same document and nothing is parsed or
    serialized again to find a verdict. Prefixed so it can never equal a `proof_key`."""
    return b"t" + hashlib.sha256(text.encode()).digest()


class ProofVerifier:
    """Thread-safe, bounded (LRU) cache of definite verdicts in front of didkit."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._verdicts: OrderedDict[bytes, bool] = OrderedDict()
        self._lock = threading.Lock()

    def verify_many(self, credentials: list[dict[str, Any]], memo: dict[bytes, bool] | None = None) -> list[bool]:
        """One verdict per credential (see `verify_stamps`)."""
        return self.verify_stamps([CachedStamp("", credential) for credential in credentials], memo)

    def verify_stamps(self, stamps: list[CachedStamp], memo: dict[bytes, bool] | None = None) -> list[bool]:
        """One verdict per stamp's credential. A stamp read from the database is looked up by its stored text first,
        then (only when that misses) by its sorted serialization, which is how a submitted credential checked before
        the transaction was remembered. `memo` (one request's answers) also keeps the indefinite ones, so a junk
        proof is sent to didkit once per request, not once per check."""
        memo = {} if memo is None else memo
        verdicts: list[bool | None] = []
        keys: list[list[bytes]] = []
        for stamp in stamps:
            stamp_keys = [stored_key(stamp.text)] if stamp.text is not None else []
            verdict = self._known(stamp_keys, memo)
            if verdict is None:
                stamp_keys.append(proof_key(stamp.credential))
                verdict = self._known(stamp_keys[-1:], memo)
            verdicts.append(verdict)
            keys.append(stamp_keys)
        missing = [index for index, verdict in enumerate(verdicts) if verdict is None]
        if missing:
            documents = [stamps[index].text or json.dumps(stamps[index].credential) for index in missing]
            results = thread_loop().run_until_complete(_verify_documents(documents))
            for index, result in zip(missing, results, strict=True):
                verdict = _verdict(result)
                if verdict is not None:
                    for key in keys[index]:
                        self._store(key, verdict)
                verdicts[index] = bool(verdict)
        for stamp_keys, verdict in zip(keys, verdicts, strict=True):
            for key in stamp_keys:
                memo[key] = bool(verdict)
        return [bool(verdict) for verdict in verdicts]

    def _known(self, keys: list[bytes], memo: dict[bytes, bool]) -> bool | None:
        for key in keys:
            verdict = memo.get(key)
            if verdict is None:
                verdict = self._cached(key)
            if verdict is not None:
                return verdict
        return None

    def _cached(self, key: bytes) -> bool | None:
        with self._lock:
            verdict = self._verdicts.get(key)
            if verdict is not None:
                self._verdicts.move_to_end(key)
            return verdict

    def _store(self, key: bytes, verdict: bool) -> None:
        with self._lock:
            self._verdicts[key] = verdict
            while len(self._verdicts) > self._max_entries:
                self._verdicts.popitem(last=False)

    def cached_verdict(self, credential: dict[str, Any]) -> bool | None:
        return self._cached(proof_key(credential))

    def clear(self) -> None:
        with self._lock:
            self._verdicts.clear()


class RequestProofs:
    """One request's proof checks: run once before the transaction, answered from memory under the lock."""

    def __init__(self, verifier: ProofVerifier) -> None:
        self._verifier = verifier
        self._memo: dict[bytes, bool] = {}
        # stamps read from the database for this request, by stored text: read again under the lock, an unchanged
        # stamp is not parsed twice
        self.read: dict[str, CachedStamp] = {}
        # the address's stamps as read before the transaction, when the request writes none itself: under the lock,
        # scoring only checks that they are still the live rows (their versions) instead of reading them again
        self.unchanged_stamps: list[CachedStamp] | None = None
        # which of `unchanged_stamps` the check before the transaction kept (valid then)
        self.unchanged_valid: list[CachedStamp] | None = None
        # `unchanged_stamps` were not read for this request but remembered from an earlier one: only usable when
        # the read under the lock confirms them
        self.guessed = False

    def verify_stamps(self, stamps: list[CachedStamp]) -> list[bool]:
        return self._verifier.verify_stamps(stamps, self._memo)
