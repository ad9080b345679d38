"""Partner API keys: `<prefix>.<secret>`; SHA-256 fast path, PBKDF2 fallback that fills the SHA-256 column.

A key that authenticated is remembered per worker for API_KEY_CACHE_SECONDS (by the SHA-256 of the key, never the
key itself): a revoked key, or a changed rate limit, takes effect within that bound (docs/decisions.md)."""

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import check_password

from scorer_fast.caching import TtlCache
from scorer_fast.db import keys


@dataclass(frozen=True)
class ApiKeyPrincipal:
    key_id: str
    account_id: int
    embed_rate_limit: str | None
    prefix: str = ""  # the rate-limit counter's key (text before the first ".")
    rate_limit: str | None = None  # e.g. "125/15m"; "" or None: unlimited


# Keys that authenticated, by `sha256_hash` of the raw key; a worker serves a handful of partners' keys.
_authenticated: TtlCache[str, ApiKeyPrincipal] = TtlCache(max_entries=10_000)

KEY_ALPHABET = string.ascii_letters + string.digits


def new_api_key() -> str:
    """`<8-char prefix>.<32-char secret>`, the original's format (djangorestframework-api-key)."""
    prefix = "".join(secrets.choice(KEY_ALPHABET) for _ in range(8))
    return prefix + "." + "".join(secrets.choice(KEY_ALPHABET) for _ in range(32))


def sha256_hash(key: str) -> str:
    return "sha256$" + hashlib.sha256(key.encode()).hexdigest()


def api_key_authenticate(raw_key: str | None) -> ApiKeyPrincipal | None:
    """The usable (not revoked) key matching `raw_key`, or None. Comparisons are constant-time."""
    if not raw_key:
        return None
    if raw_key in settings.DEMO_API_KEY_ALIASES and settings.DEMO_API_KEY:
        raw_key = settings.DEMO_API_KEY
    digest = sha256_hash(raw_key)
    if (known := _authenticated.get(digest, settings.API_KEY_CACHE_SECONDS)) is not None:
        return known
    read_at = _authenticated.clock()
    principal = _authenticate(raw_key, digest)
    if principal is not None:
        _authenticated.put(digest, principal, read_at, settings.API_KEY_CACHE_SECONDS)
    return principal


def _authenticate(raw_key: str, digest: str) -> ApiKeyPrincipal | None:
    prefix = raw_key.partition(".")[0]
    row = keys.usable_api_key_by_prefix(prefix)
    if row is None:
        return None
    expected_sha256 = row.hashed_key_sha256 or (row.hashed_key if row.hashed_key.startswith("sha256$") else None)
    if expected_sha256:
        valid = hmac.compare_digest(digest, expected_sha256)
    elif row.hashed_key.startswith("pbkdf2_sha256$"):
        valid = check_password(raw_key, row.hashed_key)  # constant-time inside Django
        if valid:  # migrate to the fast path, as the original does in the request
            keys.api_key_store_sha256(row.id, digest)
    else:
        valid = False
    if not valid:
        return None
    return ApiKeyPrincipal(row.id, row.account_id, row.embed_rate_limit, prefix=prefix, rate_limit=row.rate_limit)


def forget_all() -> None:
    """Tests: start from an empty cache."""
    _authenticated.clear()
