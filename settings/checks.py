"""Start-up refusal: production mode needs real secrets, not the original's placeholders or our demo values."""

from django.core.exceptions import ImproperlyConfigured

# Published development values (SCORER_ENV=development only).
DEVELOPMENT_SECRET_KEY = "scorer-fast-development-only-secret-key"
DEVELOPMENT_INTERNAL_TOKEN = "scorer-fast-development-internal-token"
# The original's defaults and well-known development values: never acceptable in production.
PLACEHOLDER_SECRET_KEYS = frozenset(
    {"", "secret-test-value", "dev-secret-key-not-for-production", DEVELOPMENT_SECRET_KEY}
)
PLACEHOLDER_INTERNAL_TOKENS = frozenset({"", "abc", DEVELOPMENT_INTERNAL_TOKEN})
PLACEHOLDER_ISSUERS = frozenset({"did:key:GlMY_1zkc0i11O-wMBWbSiUfIkZiXzFLlAQ89pdfyBA", "did:ethr:0xabczyx"})
MIN_SECRET_KEY_LENGTH = 32
# Management commands that serve nothing and write nothing (the rollout audit): they need the database and the
# scoring settings, not the web server's secrets (SECRET_KEY, ALLOWED_HOSTS, CGRANTS_API_TOKEN) nor
# CERAMIC_CACHE_SCORER_ID, which only the ceramic-cache routes read.
READ_ONLY_COMMANDS = frozenset({"audit_scores"})


def serves_requests(argv: list[str]) -> bool:
    """False for `manage.py <read-only command>` (and `django-admin <command>`); True for everything else."""
    return not (len(argv) > 1 and argv[1] in READ_ONLY_COMMANDS)


def production_problems(
    *,
    secret_key: str,
    trusted_issuers: list[str],
    demo_issuer_did: str,
    ceramic_cache_scorer_id: int | None,
    database_url: str,
    debug: bool,
    allowed_hosts: list[str],
    internal_api_token: str,
    serving: bool = True,
) -> list[str]:
    problems = []
    if serving and (secret_key in PLACEHOLDER_SECRET_KEYS or len(secret_key) < MIN_SECRET_KEY_LENGTH):
        problems.append(f"SECRET_KEY must be a real secret of at least {MIN_SECRET_KEY_LENGTH} characters")
    if not trusted_issuers:
        problems.append("TRUSTED_IAM_ISSUERS must list the production IAM issuer DIDs")
    bad = sorted(set(trusted_issuers) & (PLACEHOLDER_ISSUERS | {demo_issuer_did}))
    if bad:
        problems.append(f"TRUSTED_IAM_ISSUERS contains placeholder or demo issuers: {', '.join(bad)}")
    if not all(isinstance(issuer, str) and issuer.startswith("did:") for issuer in trusted_issuers):
        problems.append("TRUSTED_IAM_ISSUERS must be a JSON list of DID strings")
    if serving and ceramic_cache_scorer_id is None:
        problems.append("CERAMIC_CACHE_SCORER_ID must be set")
    if not database_url:
        problems.append("DATABASE_URL must be set (the embedded database is for development only)")
    if debug:
        problems.append("DEBUG must be off")
    if serving and (not allowed_hosts or "*" in allowed_hosts):
        problems.append("ALLOWED_HOSTS must name the service's host names (not empty, not *)")
    if serving and internal_api_token in PLACEHOLDER_INTERNAL_TOKENS:
        problems.append("CGRANTS_API_TOKEN must be set (GET /internal/score/v2 requires it)")
    return problems


def refuse_placeholders_in_production(**values) -> None:
    problems = production_problems(**values)
    if problems:
        raise ImproperlyConfigured("Refusing to start in production mode: " + "; ".join(problems))
