"""The test database is real PostgreSQL: the embedded server by default, DATABASE_URL when set.

Its tables come from the models, or from the real schema when SCORER_SCHEMA_SQL names a pg_dump file
(scripts/test runs the suite both ways). With SCORER_POOLER=pgbouncer (scripts/test's pooled pass) the requests
reach it through pgbouncer in transaction mode (tests/pooler.py); the test database itself is created and dropped
directly.
"""

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.apps import apps
from django.conf import settings
from django.db import connection

from scorer_fast.db.bootstrap import create_missing_tables, load_schema_sql
from scorer_fast.services import api_keys, communities, seen_stamps, use_cases
from scorer_fast.services.scoring import proof_verifier
from settings import embedded_redis
from tests import pooler


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    with django_db_blocker.unblock():
        original_name = connection.settings_dict["NAME"]
        test_name = connection.creation._create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        connection.close()
        settings.DATABASES["default"]["NAME"] = test_name
        connection.settings_dict["NAME"] = test_name
        if schema := os.environ.get("SCORER_SCHEMA_SQL"):
            load_schema_sql(Path(schema))
        create_missing_tables()
        running = pooler.start(connection.settings_dict) if pooler.requested() else None
        if running is not None:
            connection.close()
            pooler.route_through(running, connection.settings_dict)
    yield running
    with django_db_blocker.unblock():
        if running is not None:
            connection.close()
            pooler.route_directly(connection.settings_dict)
            running.stop()
        connection.creation.destroy_test_db(original_name, verbosity=0)


@pytest.fixture
def pgbouncer(django_db_setup) -> pooler.Pgbouncer:
    """The pooler the connection goes through; tests that need one are skipped outside the pooled pass."""
    if django_db_setup is None:
        pytest.skip("needs the pooled pass (SCORER_POOLER=pgbouncer, scripts/test)")
    return django_db_setup


def scorer_tables() -> list[str]:
    return [model._meta.db_table for model in apps.get_app_config("scorer_fast").get_models()] + ["auth_user"]


@pytest.fixture
def committed_db(request):
    """Real commits (for threads and rollback tests). Django's flush afterwards truncates with CASCADE (it does
    when available_apps is set), since account_account references auth_user; the unmanaged tables are emptied here."""
    # App names, not INSTALLED_APPS entries: the admin is installed by its AppConfig path (SupportAdminConfig).
    installed = [config.name for config in apps.get_app_configs()]
    marker = pytest.mark.django_db(transaction=True, available_apps=installed)
    request.node.add_marker(marker)
    request.getfixturevalue("_django_db_helper")
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(scorer_tables())} RESTART IDENTITY CASCADE")


@pytest.fixture(autouse=True)
def _fresh_caches():
    forget_worker_caches()


def forget_worker_caches() -> None:
    """A cold worker: every lookup the worker caches goes to the database."""
    proof_verifier().clear()
    use_cases._weights_cache.clear()
    communities.forget_all()
    api_keys.forget_all()
    seen_stamps.forget_all()
    connection.forget_contention()


def pytest_sessionfinish(session, exitstatus):
    session.config._scorer_exit_status = int(exitstatus)


def pytest_unconfigure(config):
    """didkit's native runtime may crash the interpreter at shutdown; leave with the real status instead."""
    status = getattr(config, "_scorer_exit_status", None)
    if status is None:
        return
    if not os.environ.get("DATABASE_URL"):
        from settings import embedded_pg

        connection.close()
        embedded_pg.stop()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


# --- Redis for rate limits: always the embedded server (never CELERY_BROKER_URL), in .redis-test/ ------------------

TEST_REDIS_DATA = Path(__file__).resolve().parent.parent / ".redis-test"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """Module-scoped: tests/test_rate_limits.py stops it mid-run to prove fail-open."""
    os.environ["REDIS_DATA"] = str(TEST_REDIS_DATA)
    yield embedded_redis.ensure_running()
    embedded_redis.stop()


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def rate_limits_on(settings, redis_url: str) -> None:
    """RATELIMIT_ENABLE, with the rate-limit cache on the test Redis (a fresh cache handler per test)."""
    settings.RATELIMIT_ENABLE = True
    settings.CACHES = {**settings.CACHES, "ratelimit": {**settings.CACHES["ratelimit"], "LOCATION": redis_url}}
