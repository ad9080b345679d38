"""Django's RedisCache with one redis client per connection pool instead of one per command.

Django builds a new `redis.Redis` object for every cache call (about 60 µs each with redis-py 8, two of the three
calls a rate-limit check makes); a client over a connection pool is thread-safe and can be reused. The key function
and the stored values are Django's own, so the counters stay the original's.

`incr` (django-ratelimit's second call once a window's counter exists) is Django's `EXISTS` then `INCRBY` sent as
one Lua script: one round trip instead of two, with the same result (`ValueError` for a missing key), and a key
that expires between the two commands can no longer be recreated by `INCRBY` without its expiry.

`count_in_window` is django-ratelimit's whole counting step (`add` of 1 with the window's expiry, else `incr`)
as one script: one round trip per rate-limit check, same key, same value and same expiry
(scorer_fast/services/rate_limits.py).
"""

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_INCR_EXISTING = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end"
_ADD_OR_INCR = (
    "if redis.call('SET', KEYS[1], 1, 'EX', ARGV[1], 'NX') then return 1 end return redis.call('INCRBY', KEYS[1], 1)"
)


class _ReusedClientCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._incr_scripts: dict[int, Any] = {}
        self._count_scripts: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client

    def incr(self, key: Any, delta: int) -> int:
        client = self.get_client(key, write=True)
        script = self._incr_scripts.get(id(client))
        if script is None:
            script = self._incr_scripts.setdefault(id(client), client.register_script(_INCR_EXISTING))
        value = script(keys=[key], args=[delta])  # EVALSHA, loading the script once per Redis server
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    def count_in_window(self, key: Any, timeout: int) -> int:
        client = self.get_client(key, write=True)
        script = self._count_scripts.get(id(client))
        if script is None:
            script = self._count_scripts.setdefault(id(client), client.register_script(_ADD_OR_INCR))
        return int(script(keys=[key], args=[timeout]))


class ReusedClientRedisCache(RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ReusedClientCacheClient

    def count_in_window(self, key: str, timeout: int) -> int:
        """Start the counter at 1 with `timeout` seconds to live, or add 1 to the existing one; the new count."""
        return self._cache.count_in_window(self.make_and_validate_key(key), timeout)
