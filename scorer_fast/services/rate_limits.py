"""Per-API-key rate limits, counted by django-ratelimit (the original's library) in the original's Redis cache.

Same group, key (the API key's prefix), rate (the key's `rate_limit` column) and cache settings as the original,
so both services increment one shared counter per key during a gradual rollout (docs/decisions.md).
"""

import logging
import re

import redis
from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest
from django_ratelimit import ALL
from django_ratelimit.core import EXPIRATION_FUDGE, _get_window, _make_cache_key, _split_rate, is_ratelimited

from scorer_fast.errors import RateLimited
from scorer_fast.services.api_keys import ApiKeyPrincipal

logger = logging.getLogger(__name__)

# Every route this service limits (the v2 score route, submit-passport) is in the original's "registry" group;
# the "analysis" group belongs to routes served elsewhere.
REGISTRY_GROUP = "registry"
# What django-ratelimit can parse (a prefix match, like its own: count, period multiplier, unit); a rate with "."
# would be an import path there, and a zero multiplier ("10/0m") a zero-length window it divides by.
_RATE = re.compile(r"([\d]+)/([\d]*)([smhd])?")


def rate_limited_message() -> str:
    form = settings.PASSPORT_API_RATE_LIMITING_FORM
    return f"You have been rate limited! Use this form to request a rate limit elevation: {form}"


def enforce_rate_limit(request: HttpRequest, principal: ApiKeyPrincipal) -> None:
    """Count this request against the key's rate; raise RateLimited once the window's count exceeds it.

    An empty or NULL rate never limits and leaves Redis untouched. An unreachable Redis serves the request
    (fail open, warning logged) where the original answers 500.
    """
    rate = principal.rate_limit
    if not settings.RATELIMIT_ENABLE or not rate:
        return
    if not _parsable(rate):
        logger.warning("unparsable rate_limit on an API key; not limiting", extra={"rate_limit": rate})
        return
    try:
        limited = _counted_over_limit(request, principal.prefix, rate)
    except (redis.RedisError, OSError) as exc:
        logger.warning("rate-limit store unreachable; serving without a limit: %s", type(exc).__name__)
        return
    if limited:
        raise RateLimited(rate_limited_message())


def _parsable(rate: str) -> bool:
    match = _RATE.match(rate)
    return "." not in rate and match is not None and int(match.group(2) or 1) > 0


def _counted_over_limit(request: HttpRequest, prefix: str, rate: str) -> bool:
    """django-ratelimit's `is_ratelimited(group=registry, key=prefix, rate, method=ALL, increment=True)`, with its
    own window and key functions, counted in one Redis round trip where the library needs two (its `add`, then
    `incr`): scorer_fast/redis_cache.py. Another cache backend goes through the library itself."""
    cache = caches[settings.RATELIMIT_USE_CACHE]
    count_in_window = getattr(cache, "count_in_window", None)
    if count_in_window is None:
        return is_ratelimited(
            request, group=REGISTRY_GROUP, key=lambda _group, _request: prefix, rate=rate, method=ALL, increment=True
        )
    limit, period = _split_rate(rate)
    window = _get_window(prefix, period)
    return (
        count_in_window(_make_cache_key(REGISTRY_GROUP, window, rate, prefix, ALL), period + EXPIRATION_FUDGE) > limit
    )
