"""A real Redis for the rate-limit tests: the embedded server (settings/embedded_redis.py) in .redis-test/, started
once per run and stopped at its end. Always this one, never CELERY_BROKER_URL: a test stops it to prove fail-open."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from settings import embedded_redis

TEST_DATA = Path(__file__).resolve().parent.parent / ".redis-test"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    os.environ["REDIS_DATA"] = str(TEST_DATA)
    yield embedded_redis.ensure_running()
    embedded_redis.stop()


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def rate_limits_on(settings, redis_url: str) -> None:
    """RATELIMIT_ENABLE with the rate-limit cache pointed at the test Redis (a fresh cache handler per test)."""
    settings.RATELIMIT_ENABLE = True
    settings.CACHES = {**settings.CACHES, "ratelimit": {**settings.CACHES["ratelimit"], "LOCATION": redis_url}}
