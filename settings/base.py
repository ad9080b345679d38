"""All settings, read from the environment (names follow the original service where the meaning is the same).

`.env.example` lists every variable. Production is the default: without SCORER_ENV=development the service
refuses placeholder secrets at start-up, and the development conveniences (the published SECRET_KEY, the demo
issuer and its `demo` app, the embedded PostgreSQL) are out of reach.
"""

import os
import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from settings import embedded_pg, embedded_redis
from settings.checks import (
    DEVELOPMENT_INTERNAL_TOKEN,
    DEVELOPMENT_SECRET_KEY,
    refuse_placeholders_in_production,
    serves_requests,
)
from settings.database import database_from_url
from settings.env import env_bool, env_int, env_json, env_seconds, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

SCORER_ENV = env_str("SCORER_ENV", "production").lower()
if SCORER_ENV not in {"production", "development"}:
    raise ImproperlyConfigured(f"SCORER_ENV must be production (the default) or development, got {SCORER_ENV!r}")
DEVELOPMENT = SCORER_ENV == "development"
PRODUCTION = not DEVELOPMENT
DEBUG = env_bool("DEBUG", default=False)

# Development-only defaults; production refuses them (settings/checks.py).
SECRET_KEY = env_str("SECRET_KEY", DEVELOPMENT_SECRET_KEY if DEVELOPMENT else "")
ALLOWED_HOSTS = [
    host.strip() for host in env_str("ALLOWED_HOSTS", "*" if DEVELOPMENT else "").split(",") if host.strip()
]

# --- database -------------------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
DATABASES = {
    "default": database_from_url(
        # Production without DATABASE_URL gets a placeholder that the start-up check below refuses.
        DATABASE_URL or (embedded_pg.ensure_running() if DEVELOPMENT else "postgres:///unset"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        # A login a pooler holds (one that has no server to ask) is bounded like a first answer (libpq's minimum).
        connect_timeout=env_int("DB_CONNECT_TIMEOUT", 2),
        app_name=env_str("DB_APPLICATION_NAME", "scorer_fast"),
        # Lambda (AWS_LAMBDA_FUNCTION_NAME is set by its runtime): ping on every reuse; an execution environment is
        # frozen between invocations, and its clock's view of that idle time is not something to rely on.
        health_check_idle_seconds=env_int(
            "DB_HEALTH_CHECK_IDLE_SECONDS", 0 if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else 1
        ),
        # How long a request waits for the database's first answer (a pooler queueing it): docs/deploy.md.
        unavailable_after_seconds=env_seconds("DB_UNAVAILABLE_AFTER_SECONDS", 2.0),
    )
}
# Bounded waits inside a request's transaction (set per transaction, so safe behind a transaction pooler); keep
# both well under GUNICORN_TIMEOUT. A lock wait that times out is answered 503.
DB_STATEMENT_TIMEOUT_MS = env_int("DB_STATEMENT_TIMEOUT_MS", 10_000)
DB_LOCK_TIMEOUT_MS = env_int("DB_LOCK_TIMEOUT_MS", 5_000)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- scoring ----------------------------------------------------------------------------------------------------
# The demo issuer (key in demo/issuer.py) signs the demo stamps; trusted by default in development only.
DEMO_ISSUER_DID = "did:ethr:0x018d103c154748e8d5a1d7658185125175457f84"
TRUSTED_IAM_ISSUERS: list[str] = env_json("TRUSTED_IAM_ISSUERS", [DEMO_ISSUER_DID] if DEVELOPMENT else [])
CERAMIC_CACHE_SCORER_ID = env_int("CERAMIC_CACHE_SCORER_ID")
FF_MULTI_NULLIFIER = env_str("FF_MULTI_NULLIFIER", "off").lower() == "on"
FF_API_ANALYTICS = env_str("FF_API_ANALYTICS", "off").lower() == "on"
HUMAN_POINTS_ENABLED = env_bool("HUMAN_POINTS_ENABLED", default=False)
HUMAN_POINTS_WRITE_ENABLED = env_bool("HUMAN_POINTS_WRITE_ENABLED", default=False)
HUMAN_POINTS_START_TIMESTAMP = env_int("HUMAN_POINTS_START_TIMESTAMP", 0)
HUMAN_POINTS_MTA_ENABLED = env_bool("HUMAN_POINTS_MTA_ENABLED", default=False)
# In-memory cache of didkit verdicts, per worker process (a proof's validity never changes).
VERIFIED_PROOF_CACHE_SIZE = env_int("VERIFIED_PROOF_CACHE_SIZE", 50_000)
WEIGHTS_CACHE_SECONDS = env_int("WEIGHTS_CACHE_SECONDS", 60)
# Per-worker bounds (docs/decisions.md): a community's scorer setup (type, weights, threshold, customization) and an
# API key that authenticated are reused for at most this many seconds, so a weight change, a revoked key or a new
# rate limit takes effect within that bound. 0 reads them on every request.
SCORER_SETUP_CACHE_SECONDS = env_int("SCORER_SETUP_CACHE_SECONDS", 5)
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5)

# --- auth --------------------------------------------------------------------------------------------------------
DEMO_API_KEY = env_str("DEMO_API_KEY") or None
DEMO_API_KEY_ALIASES: list[str] = env_json("DEMO_API_KEY_ALIASES", [])
DEMO_API_SCORER_ID = env_int("DEMO_API_SCORER_ID")
SIWE_JWT_PUBLIC_KEY = env_str("SIWE_JWT_PUBLIC_KEY")
# `GET /internal/score/v2/...` always requires `Authorization: <CGRANTS_API_TOKEN>` (as the original); the other
# /internal routes sit behind a private load balancer and require it only with REQUIRE_INTERNAL_API_TOKEN.
REQUIRE_INTERNAL_API_TOKEN = env_bool("REQUIRE_INTERNAL_API_TOKEN", default=False)
CGRANTS_API_TOKEN = env_str("CGRANTS_API_TOKEN", DEVELOPMENT_INTERNAL_TOKEN if DEVELOPMENT else "")
# Gradual rollout: when set (e.g. "X-Use-Rust-Scorer"), /ceramic-cache routes answer 404 unless it is "true".
ROLLOUT_ROUTING_HEADER = env_str("ROLLOUT_ROUTING_HEADER")

# --- rate limits (django-ratelimit, the original's library, on the original's Redis cache) -------------------------
# Same cache location variable, KEY_PREFIX "", VERSION 1 and "rl:" prefix as the original, so both services count
# in the same Redis keys during a gradual rollout (docs/decisions.md). Off by default, as in the original.
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", default=False)
RATELIMIT_FAIL_OPEN = True
RATELIMIT_USE_CACHE = "ratelimit"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
if RATELIMIT_ENABLE and not CELERY_BROKER_URL:
    if PRODUCTION:
        raise ImproperlyConfigured("RATELIMIT_ENABLE is on but CELERY_BROKER_URL (the rate-limit Redis) is unset.")
    CELERY_BROKER_URL = embedded_redis.ensure_running()  # development convenience, like the embedded PostgreSQL
# A slow or unreachable Redis costs at most this much per request; the request is then served (fail open).
RATELIMIT_REDIS_TIMEOUT_SECONDS = env_seconds("RATELIMIT_REDIS_TIMEOUT_SECONDS", 0.2)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    RATELIMIT_USE_CACHE: {
        "BACKEND": "scorer_fast.redis_cache.ReusedClientRedisCache",  # Django's RedisCache, fewer allocations
        "LOCATION": CELERY_BROKER_URL or "redis://localhost:6379/0",
        "OPTIONS": {
            "socket_connect_timeout": RATELIMIT_REDIS_TIMEOUT_SECONDS,
            "socket_timeout": RATELIMIT_REDIS_TIMEOUT_SECONDS,
        },
    },
}
PASSPORT_API_RATE_LIMITING_FORM = (
    env_str("PASSPORT_API_RATE_LIMITING_FORM")
    or "https://docs.google.com/forms/d/e/1FAIpQLSeUATg0nTE9ws3qESGBktFcOX0brF19iv2L0BLoiub9pbSMeg/viewform"
)

MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", 2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Django -----------------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "scorer_fast.apps.SupportAdminConfig",  # django.contrib.admin with the support admin's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # /docs renders Swagger UI from ninja's own static files (collectstatic), not from a CDN
    "scorer_fast",
    *(["demo"] if DEVELOPMENT else []),  # demo signing and `seed_demo`: never in production
]
MIDDLEWARE = [
    "scorer_fast.middleware.RequestContextMiddleware",
    "scorer_fast.middleware.ApiUsageMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # the admin's session, CSRF, user and messages; the first, third and fourth only outside the API routes
    "scorer_fast.middleware.PagesSessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "scorer_fast.middleware.PagesAuthenticationMiddleware",
    "scorer_fast.middleware.PagesMessageMiddleware",
]
ROOT_URLCONF = "scorer_fast.urls"
WSGI_APPLICATION = "scorer_fast.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
USE_TZ = True
TIME_ZONE = "UTC"
FORMAT_MODULE_PATH = "scorer_fast.formats"  # one date format on every admin page
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PRODUCTION
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
# Public deployments can switch off the admin and the API docs (/docs and /openapi.json).
ADMIN_ENABLED = env_bool("ADMIN_ENABLED", default=True)
API_DOCS_ENABLED = env_bool("API_DOCS_ENABLED", default=True)

# --- logs and traces --------------------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "scorer_fast.observability.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {"django.server": {"level": "WARNING"}, "pgserver": {"level": "WARNING"}},
}
OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "scorer_fast")
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT")

if PRODUCTION:
    refuse_placeholders_in_production(
        secret_key=SECRET_KEY,
        trusted_issuers=TRUSTED_IAM_ISSUERS,
        demo_issuer_did=DEMO_ISSUER_DID,
        allowed_hosts=ALLOWED_HOSTS,
        internal_api_token=CGRANTS_API_TOKEN,
        ceramic_cache_scorer_id=CERAMIC_CACHE_SCORER_ID,
        database_url=DATABASE_URL,
        debug=DEBUG,
        serving=serves_requests(sys.argv),
    )
