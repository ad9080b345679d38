"""Demo data: a scorer with realistic weights, an API key (printed once), stamps signed by the demo issuer and
saved and scored through the service layer (the embed route's use case), so the admin shows scores from the start."""

import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jwt
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from demo.issuer import demo_issuer_jwk
from demo.signing import issue_stamp
from scorer_fast.models import Account, AccountAPIKey, BinaryWeightedScorer, CeramicCache, Community, Scorer
from scorer_fast.services import use_cases
from scorer_fast.services.api_keys import new_api_key, sha256_hash

DEMO_COMMUNITY = "scorer_fast demo"
# A slice of the Passport weights (as floats, like the original's WeightConfiguration); threshold 20.
DEMO_WEIGHTS = {
    "BinanceBABT2": 16.021,
    "HolonymGovIdProvider": 16.026,
    "Ens": 0.408,
    "Google": 0.525,
    "Github": 0.687,
    "Linkedin": 1.531,
    "Discord": 0.516,
    "SelfStakingGold": 5.081,
}
DEMO_ADDRESSES = {
    "0x" + "d" * 40: ["BinanceBABT2", "SelfStakingGold", "Google", "Github", "Ens"],  # passes
    "0x" + "e" * 40: ["Google", "Discord", "Linkedin"],  # below the threshold
    "0x" + "f" * 40: ["Github"],  # shares its Github nullifier with 0xddd…: de-duplicated by LIFO
}
DEMO_ADMIN_USERNAME = "demo-admin"


class Command(BaseCommand):
    help = "Create (or refresh) the demo scorer, a new demo API key and signed demo stamps; print curl commands."

    def add_arguments(self, parser):
        parser.add_argument("--env-file", type=Path, help="write CERAMIC_CACHE_SCORER_ID / DEMO_API_SCORER_ID here")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--allow-any-database",
            action="store_true",
            help="also seed the database DATABASE_URL names (by default only the embedded development one)",
        )
        parser.add_argument(
            "--create-admin",
            action="store_true",
            help=f"create (or reset) the superuser {DEMO_ADMIN_USERNAME!r} with a new random password, printed once",
        )

    def handle(self, *args, env_file: Path | None = None, base_url: str = "", **options):
        if settings.DATABASE_URL and not options.get("allow_any_database"):
            raise CommandError(
                "Refusing to write demo data (a scorer, an API key, stamps signed by the demo issuer) into the "
                "database DATABASE_URL names: by default only the embedded development database is seeded. "
                "Pass --allow-any-database to seed it anyway."
            )
        with transaction.atomic():
            community = self._community()
            key = self._api_key(community.account)
            low_tier_key = low_tier_api_key(community.account)
            CeramicCache.objects.filter(address__in=list(DEMO_ADDRESSES)).delete()
            admin_password = self._demo_admin() if options.get("create_admin") else None
        # Each address in its own durable transaction, in order: 0xddd… holds the shared Github nullifier first.
        scores = {address: self._save_and_score(address, community.id) for address in DEMO_ADDRESSES}
        if env_file:
            env_file.write_text(f"CERAMIC_CACHE_SCORER_ID={community.id}\nDEMO_API_SCORER_ID={community.id}\n")
        self._print_usage(base_url, community.id, key)
        self.stdout.write(submit_passport_and_rate_limit_demo(community, key, low_tier_key, base_url))
        self.stdout.write(admin_guide(base_url, scores, admin_password))

    def _community(self) -> Community:
        existing = Community.objects.filter(name=DEMO_COMMUNITY).select_related("account").first()
        if existing:
            BinaryWeightedScorer.objects.filter(scorer_ptr_id=existing.scorer_id).update(weights=DEMO_WEIGHTS)
            return existing
        user, _ = User.objects.get_or_create(username="scorer-fast-demo")
        account, _ = Account.objects.get_or_create(user=user, defaults={"address": "0x" + "c" * 40})
        scorer = Scorer.objects.create(type="WEIGHTED_BINARY", exclude_from_weight_updates=False)
        BinaryWeightedScorer.objects.create(scorer_ptr=scorer, weights=DEMO_WEIGHTS, threshold=Decimal("20"))
        return Community.objects.create(
            name=DEMO_COMMUNITY,
            description="demo data from manage.py seed_demo",
            account=account,
            scorer=scorer,
            created_at=datetime.now(UTC),
            rule="LIFO",
            human_points_program=False,
        )

    def _api_key(self, account: Account) -> str:
        """A fresh key every run (only its hashes are stored, so an old one cannot be printed again)."""
        AccountAPIKey.objects.filter(account=account, name="demo key").delete()
        key = new_api_key()
        prefix = key.split(".")[0]
        hashed = make_password(key)
        AccountAPIKey.objects.create(
            id=f"{prefix}.{hashed}"[:150],
            prefix=prefix,
            hashed_key=hashed,
            hashed_key_sha256=sha256_hash(key),
            created=datetime.now(UTC),
            name="demo key",
            revoked=False,
            account=account,
            rate_limit="125/15m",
            embed_rate_limit="125/15m",
            create_scorers=False,
            read_scores=True,
            submit_passports=True,
            historical_endpoint=False,
        )
        return key

    def _save_and_score(self, address: str, community_id: int) -> dict:
        """Sign the address's demo stamps and hand them to the embed route's use case: the same proof checks,
        de-duplication and score rows as a request (stamps saved with source_app 2, attributed to the scorer)."""
        jwk = demo_issuer_jwk()
        issued = datetime.now(UTC).replace(microsecond=0)
        first = next(iter(DEMO_ADDRESSES))
        credentials = [
            issue_stamp(
                jwk=jwk,
                address=address,
                provider=provider,
                nullifiers=[f"v0:{provider}:{first if provider == 'Github' else address}:demo"],  # shared Github
                issued=issued,
                expires=issued + timedelta(days=90),
            )
            for provider in DEMO_ADDRESSES[address]
        ]
        return use_cases.embed_add_stamps(raw_address=address, scorer_id=community_id, credentials=credentials)["score"]

    def _demo_admin(self) -> str:
        """Development only (the demo app is installed only with SCORER_ENV=development): a one-off login."""
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=DEMO_ADMIN_USERNAME)
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        return password

    def _print_usage(self, base_url: str, community_id: int, key: str) -> None:
        passing, failing, duplicate = DEMO_ADDRESSES
        token = jwt.encode(
            {
                "did": f"did:pkh:eip155:1:{passing}",
                "token_type": "access",
                "jti": uuid.uuid4().hex,
                "iat": int(time.time()),
                "exp": int(time.time()) + 7 * 24 * 3600,
            },
            settings.SECRET_KEY,
            algorithm="HS256",
        )
        self.stdout.write(
            f"""
Demo scorer: community {community_id} (threshold 20). Demo API key (shown once): {key}
Stamps signed by {settings.DEMO_ISSUER_DID} for {passing} (passes), {failing} (below) and {duplicate} (LIFO duplicate).

  curl -s -H 'X-API-Key: {key}' {base_url}/v2/stamps/{community_id}/score/{passing}
  curl -s -H 'X-API-Key: {key}' {base_url}/v2/stamps/{community_id}/score/{failing}
  curl -s -H 'X-API-Key: {key}' {base_url}/v2/stamps/{community_id}/score/{duplicate}
  curl -s -H 'X-API-Key: {key}' {base_url}/internal/embed/validate-api-key
  curl -s {base_url}/internal/embed/score/{community_id}/{passing}
  curl -s -H 'Authorization: {settings.CGRANTS_API_TOKEN}' {base_url}/internal/score/v2/{community_id}/{passing}
  curl -s -H 'Authorization: Bearer {token}' {base_url}/ceramic-cache/score/{passing}
  curl -s '{base_url}/ceramic-cache/stamp?address={passing}'
  curl -s {base_url}/ceramic-cache/weights
  OpenAPI page: {base_url}/docs     Health: {base_url}/health
"""
        )


# --- POST /registry/submit-passport and per-key rate limits ---------------------------------------------------------

LOW_TIER_KEY_NAME = "demo key (low tier)"
LOW_TIER_RATE = "3/15m"


def low_tier_api_key(account: Account) -> str:
    """A fresh low-tier key (3 calls per 15 minutes); it counts in Redis only while RATELIMIT_ENABLE is on."""
    AccountAPIKey.objects.filter(account=account, name=LOW_TIER_KEY_NAME).delete()
    low_tier = new_api_key()
    prefix = low_tier.split(".")[0]
    AccountAPIKey.objects.create(
        id=f"{prefix}.{sha256_hash(low_tier)}",
        prefix=prefix,
        hashed_key=sha256_hash(low_tier),
        hashed_key_sha256=sha256_hash(low_tier),
        created=datetime.now(UTC),
        name=LOW_TIER_KEY_NAME,
        revoked=False,
        account=account,
        rate_limit=LOW_TIER_RATE,
        embed_rate_limit=LOW_TIER_RATE,
        create_scorers=False,
        read_scores=True,
        submit_passports=True,
        historical_endpoint=False,
    )
    return low_tier


def submit_passport_and_rate_limit_demo(community: Community, key: str, low_tier: str, base_url: str) -> str:
    """The curl commands that show submit-passport and the low-tier key's limit (scripts/serve turns limits on)."""
    passing = next(iter(DEMO_ADDRESSES))
    body = f'{{"address": "{passing}", "scorer_id": {community.id}}}'
    state = "on" if settings.RATELIMIT_ENABLE else "off (set RATELIMIT_ENABLE=on to see the 429)"
    return f"""
v1 scoring (POST /registry/submit-passport):
  curl -s -X POST -H 'X-API-Key: {key}' -H 'Content-Type: application/json' -d '{body}' \\
    {base_url}/registry/submit-passport

Rate limits are {state}. Low-tier key (rate_limit {LOW_TIER_RATE!r}): its 4th call in the window answers 429:
  for i in 1 2 3 4; do curl -s -o /dev/null -w '%{{http_code}}\\n' -H 'X-API-Key: {low_tier}' \\
    {base_url}/v2/stamps/{community.id}/score/{passing}; done
"""


def admin_guide(base_url: str, scores: dict[str, dict], admin_password: str | None) -> str:
    """Where a support engineer finds a demo address's score and why it scored what it did."""
    lines = []
    for address, score in scores.items():
        stamps = score["stamps"]
        counted = ", ".join(sorted(p for p, s in stamps.items() if not s["dedup"] and s["score"] != "0.00000"))
        deduplicated = ", ".join(sorted(p for p, s in stamps.items() if s["dedup"]))
        passing = "passes" if score["passing_score"] else "below"
        lines.append(
            f"  {address}  score {score['score']} ({passing} {score['threshold']})  counted: {counted or 'none'}"
            + (f"  de-duplicated: {deduplicated}" if deduplicated else "")
        )
    if admin_password:
        login = f"log in as {DEMO_ADMIN_USERNAME!r} with password {admin_password} (shown once; development only)"
    else:
        login = (
            "log in after creating a user once, in another terminal: .venv/bin/python manage.py createsuperuser"
            f"\n  (or start with DEMO_ADMIN=on scripts/serve for a generated {DEMO_ADMIN_USERNAME!r} login)"
        )
    duplicate = list(scores)[-1]
    return f"""
Demo scores (scored at seeding; a curl above rescores):
{chr(10).join(lines)}

Support admin: {base_url}/admin/
  {login}
  Why a score: {base_url}/admin/address/?address={duplicate}  → open its score: the verdict, then each
  stamp with its own reason (for a de-duplicated one, the address that holds its nullifier) and Recalculate.
"""
