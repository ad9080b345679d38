"""Per-API-key rate limits against a real Redis (the embedded one, settings/embedded_redis.py, in .redis-test/):
the original's counter key, shared counters, refusals and fail-open."""

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command
from django.http import HttpResponse

from scorer_fast.models import AccountAPIKey, AccountAPIKeyAnalytics
from settings import embedded_redis
from tests import factories
from tests.helpers import original_counter_key

pytestmark = pytest.mark.django_db
ADDRESS = "0x" + "a" * 40
FORM = "https://docs.google.com/forms/d/e/1FAIpQLSeUATg0nTE9ws3qESGBktFcOX0brF19iv2L0BLoiub9pbSMeg/viewform"
LIMITED = {"error": f"You have been rate limited! Use this form to request a rate limit elevation: {FORM}"}

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def partner():
    owner = factories.account()
    return owner, factories.community(owner=owner, weights={"Google": 1})


def key_with_rate(owner, rate: str | None) -> str:
    key = factories.api_key(owner)
    AccountAPIKey.objects.filter(prefix=key.split(".")[0]).update(rate_limit=rate)
    return key


def v2(client, community, key):
    return client.get(f"/v2/stamps/{community.id}/score/{ADDRESS}", HTTP_X_API_KEY=key)


def submit(client, community, key):
    body = json.dumps({"address": ADDRESS, "scorer_id": community.id})
    return client.post("/registry/submit-passport", body, content_type="application/json", HTTP_X_API_KEY=key)


def test_the_fourth_request_of_a_3_per_hour_key_is_429_with_the_lambda_body(client, partner, rate_limits_on):
    owner, community = partner
    key = key_with_rate(owner, "3/h")
    assert [v2(client, community, key).status_code for _ in range(3)] == [200, 200, 200]
    refused = v2(client, community, key)
    assert (refused.status_code, refused.json()) == (429, LIMITED)
    assert refused["Access-Control-Allow-Origin"] == "*"
    assert submit(client, community, key).status_code == 429  # refused requests keep counting, on every route


def test_submit_passport_and_the_v2_route_share_one_counter(client, partner, rate_limits_on, redis_client):
    owner, community = partner
    key = key_with_rate(owner, "3/h")
    assert submit(client, community, key).status_code == 200
    assert v2(client, community, key).status_code == 200
    assert submit(client, community, key).status_code == 200
    assert v2(client, community, key).status_code == 429
    response = submit(client, community, key)
    assert (response.status_code, response.json()) == (429, LIMITED)
    counter = original_counter_key(key.split(".")[0], 3, 3600)
    assert int(redis_client.get(counter)) == 5
    assert 3595 <= redis_client.ttl(counter) <= 3605  # SET NX EX period + 5, not renewed by INCRBY


def test_the_counter_key_is_the_originals(client, partner, rate_limits_on, redis_client):
    owner, community = partner
    key = key_with_rate(owner, "125/15m")
    prefix = key.split(".")[0]
    before = set(redis_client.keys(":1:rl:*"))
    v2(client, community, key)
    assert set(redis_client.keys(":1:rl:*")) - before == {original_counter_key(prefix, 125, 900).encode()}
    assert redis_client.get(original_counter_key(prefix, 125, 900)) == b"1"  # a plain integer, not pickled


def test_a_counter_written_by_the_original_is_honoured(client, partner, rate_limits_on, redis_client):
    owner, community = partner
    key = key_with_rate(owner, "10/h")
    redis_client.set(original_counter_key(key.split(".")[0], 10, 3600), 10, ex=3605)  # the original's 10 calls
    assert v2(client, community, key).status_code == 429


def test_the_counter_increment_keeps_the_window_and_never_creates_a_counter(rate_limits_on, redis_client):
    """The cache's incr (one Lua script, scorer_fast/redis_cache.py) behaves as Django's EXISTS + INCRBY."""
    from django.core.cache import caches

    cache = caches["ratelimit"]
    with pytest.raises(ValueError):
        cache.incr("rl:test:absent")
    assert not redis_client.exists(":1:rl:test:absent")
    assert cache.add("rl:test:window", 1, 900)
    assert cache.incr("rl:test:window") == 2
    assert cache.incr("rl:test:window", 3) == 5
    assert redis_client.get(":1:rl:test:window") == b"5"
    assert 895 <= redis_client.ttl(":1:rl:test:window") <= 900


@pytest.mark.parametrize("rate", ["", None])
def test_a_key_without_a_rate_is_never_limited_and_touches_no_counter(
    client, partner, rate_limits_on, redis_client, rate
):
    owner, community = partner
    key = key_with_rate(owner, rate)
    before = set(redis_client.keys(":1:rl:*"))
    assert {v2(client, community, key).status_code for _ in range(5)} == {200}
    assert set(redis_client.keys(":1:rl:*")) == before


def test_nothing_is_counted_while_rate_limits_are_off(client, partner, rate_limits_on, redis_client, settings):
    settings.RATELIMIT_ENABLE = False
    owner, community = partner
    key = key_with_rate(owner, "1/h")
    assert {v2(client, community, key).status_code for _ in range(3)} == {200}
    assert redis_client.get(original_counter_key(key.split(".")[0], 1, 3600)) is None


def test_a_refusal_writes_the_originals_429_usage_row(client, partner, rate_limits_on, settings):
    settings.FF_API_ANALYTICS = True
    owner, community = partner
    key = key_with_rate(owner, "1/h")
    submit(client, community, key)
    refused = submit(client, community, key)
    assert refused.status_code == 429
    row = AccountAPIKeyAnalytics.objects.order_by("id").last()
    assert (row.status_code, row.error, row.payload) == (429, "", None)
    assert json.loads(row.response) == LIMITED and row.path_segments == ["registry", "submit-passport"]


def timed(call: Callable[[], HttpResponse]) -> tuple[int, float]:
    started = time.monotonic()
    status = call().status_code
    return status, time.monotonic() - started


def test_an_unreachable_redis_serves_requests_until_it_is_back(client, partner, rate_limits_on, caplog):
    owner, community = partner
    key = key_with_rate(owner, "1/h")
    assert v2(client, community, key).status_code == 200
    served = timed(lambda: v2(client, community, "x" + key))[1]  # what a request costs with Redis up (a 401)
    embedded_redis.stop()
    try:
        with caplog.at_level(logging.WARNING, logger="scorer_fast.services.rate_limits"):
            answers = [timed(lambda: v2(client, community, key)), timed(lambda: submit(client, community, key))]
        assert [status for status, _ in answers] == [200, 200]
        assert "rate-limit store unreachable" in caplog.text
    finally:
        embedded_redis.ensure_running()
    # A refused connection is no wait: served about as fast as with Redis up (measured: 0.01 s each).
    print(f"\nRedis down: answered in {max(s for _, s in answers):.3f} s")
    assert max(seconds for _, seconds in answers) <= served + 0.1
    # Back up (empty, persistence is off): the same workers count again and limit again.
    assert [v2(client, community, key).status_code for _ in range(2)] == [200, 429]


def test_a_frozen_redis_costs_a_request_at_most_its_socket_timeout(client, partner, rate_limits_on):
    """SIGSTOP: Redis accepts the connection (the kernel does) and never answers. Each request waits
    RATELIMIT_REDIS_TIMEOUT_SECONDS (0.2 s) for it at most, then is served; once thawed, limits count again."""
    owner, community = partner
    key = key_with_rate(owner, "1/h")
    assert v2(client, community, key).status_code == 200  # the 1/h spent, the connection to Redis open
    pid = int((embedded_redis.data_dir() / "redis.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    thaw = threading.Timer(5.0, os.kill, [pid, signal.SIGCONT])  # never left frozen, even if a request hangs
    thaw.start()
    try:
        answers = [timed(lambda: v2(client, community, key)), timed(lambda: submit(client, community, key))]
    finally:
        thaw.cancel()
        os.kill(pid, signal.SIGCONT)
    print(f"\nRedis frozen: answered in {max(s for _, s in answers):.3f} s")
    assert [status for status, _ in answers] == [200, 200]
    assert max(seconds for _, seconds in answers) <= 0.5
    assert v2(client, community, key).status_code == 429


def test_production_never_starts_an_embedded_redis(tmp_path):
    """Rate limits on without CELERY_BROKER_URL: development starts the embedded Redis, production refuses."""
    env = {key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"}
    env.update(
        SCORER_ENV="production",
        RATELIMIT_ENABLE="on",
        REDIS_DATA=str(tmp_path),
        DJANGO_SETTINGS_MODULE="settings.base",
        DATABASE_URL="postgres://127.0.0.1:1/x",
    )
    code = "import django; django.setup()"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "RATELIMIT_ENABLE is on but CELERY_BROKER_URL" in result.stderr
    assert not (tmp_path / "redis.sock").exists()


def test_the_demo_prints_submit_passport_and_a_low_tier_key_that_gets_limited(client, rate_limits_on, settings):
    settings.TRUSTED_IAM_ISSUERS = [settings.DEMO_ISSUER_DID]  # as the development settings do
    out = io.StringIO()
    call_command("seed_demo", base_url="http://demo", stdout=out)
    text = out.getvalue()
    key = re.search(r"shown once\): (\S+)", text).group(1)
    body = re.search(r"-d '([^']+)' \\\n\s+http://demo/registry/submit-passport", text).group(1)
    submitted = client.post("/registry/submit-passport", body, content_type="application/json", HTTP_X_API_KEY=key)
    assert (submitted.status_code, submitted.json()["score"]) == (200, "1")
    low_tier, path = re.search(r"X-API-Key: (\S+)' \\\n\s+http://demo(/v2/stamps/\S+);", text).groups()
    assert [client.get(path, HTTP_X_API_KEY=low_tier).status_code for _ in range(4)] == [200, 200, 200, 429]
