"""didkit proof verification, driven from synchronous code.

didkit's functions are coroutines that need a running loop. Each worker thread keeps one event loop for its
whole life (no loop per request), and a request's credentials are verified concurrently on it. Verdicts are
cached per process: a proof's validity never changes, so an unchanged stamp is verified once per worker.
"""

import asyncio
import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

import didkit

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


def _verdict(result: Any) -> bool:
    if isinstance(result, BaseException):
        return False
    try:
        return not json.loads(result).get("errors")
    except (TypeError, ValueError, AttributeError):
        return False


class ProofVerifier:
    """Thread-safe, bounded (LRU) cache in front of didkit."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._verdicts: OrderedDict[bytes, bool] = OrderedDict()
        self._lock = threading.Lock()

    def verify_many(self, credentials: list[dict[str, Any]]) -> list[bool]:
        documents = [json.dumps(credential) for credential in credentials]
        keys = [hashlib.sha256(document.encode()).digest() for document in documents]
        verdicts: list[bool | None] = [self._cached(key) for key in keys]
        missing = [index for index, verdict in enumerate(verdicts) if verdict is None]
        if missing:
            results = thread_loop().run_until_complete(_verify_documents([documents[i] for i in missing]))
            for index, result in zip(missing, results, strict=True):
                verdicts[index] = _verdict(result)
                self._store(keys[index], verdicts[index])
        return [bool(verdict) for verdict in verdicts]

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

    def clear(self) -> None:
        with self._lock:
            self._verdicts.clear()
