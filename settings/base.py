"""All settings, read from the environment (names follow the original service where the meaning is the same).

`.env.example` lists every variable. SCORER_ENV=production turns on the start-up refusal of placeholder secrets.
"""

from pathlib import Path

from settings import embedded_pg
from settings.checks import refuse_placeholders_in_production
from settings.database import database_from_url
from settings.env import env_bool, env_int, env_json, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

SCORER_ENV = env_str("SCORER_ENV", "development").lower()
PRODUCTION = SCORER_ENV == "production"
DEBUG = env_bool("DEBUG", default=False)

# Development-only default; production refuses it (settings/checks.py).
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else "scorer-fast-development-only-secret-key")
ALLOWED_HOSTS = [host.strip() for host in env_str("ALLOWED_HOSTS", "*").split(",") if host.strip()]

# --- database -------------------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
DATABASES = {
    "default": database_from_url(
        DATABASE_URL or embedded_pg.ensure_running(),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        connect_timeout=env_int("DB_CONNECT_TIMEOUT", 3),
        app_name=env_str("DB_APPLICATION_NAME", "scorer_fast"),
        health_check_idle_seconds=env_int("DB_HEALTH_CHECK_IDLE_SECONDS", 1),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- scoring ----------------------------------------------------------------------------------------------------
# The demo issuer (key in scorer_fast/demo_issuer.py) signs the demo stamps; trusted by default in development only.
DEMO_ISSUER_DID = "did:ethr:0x018d103c154748e8d5a1d7658185125175457f84"
TRUSTED_IAM_ISSUERS: list[str] = env_json("TRUSTED_IAM_ISSUERS", [] if PRODUCTION else [DEMO_ISSUER_DID])
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

# --- auth --------------------------------------------------------------------------------------------------------
DEMO_API_KEY = env_str("DEMO_API_KEY") or None
DEMO_API_KEY_ALIASES: list[str] = env_json("DEMO_API_KEY_ALIASES", [])
DEMO_API_SCORER_ID = env_int("DEMO_API_SCORER_ID")
SIWE_JWT_PUBLIC_KEY = env_str("SIWE_JWT_PUBLIC_KEY")
# The /internal routes sit behind a private load balancer; set this to also require `Authorization: <token>`.
REQUIRE_INTERNAL_API_TOKEN = env_bool("REQUIRE_INTERNAL_API_TOKEN", default=False)
CGRANTS_API_TOKEN = env_str("CGRANTS_API_TOKEN")
# Gradual rollout: when set (e.g. "X-Use-Rust-Scorer"), /ceramic-cache routes answer 404 unless it is "true".
ROLLOUT_ROUTING_HEADER = env_str("ROLLOUT_ROUTING_HEADER")

MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", 2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Django -----------------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "scorer_fast",
]
MIDDLEWARE = [
    "scorer_fast.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None

# --- logs and traces --------------------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "scorer_fast.observability.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json"}},
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
        ceramic_cache_scorer_id=CERAMIC_CACHE_SCORER_ID,
        database_url=DATABASE_URL,
        debug=DEBUG,
    )
