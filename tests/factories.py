"""Rows for tests, written through the unmanaged models (plain mappings of the existing tables)."""

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count
from typing import Any

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User

from scorer_fast.models import (
    Account,
    AccountAPIKey,
    AddressList,
    AllowList,
    BinaryWeightedScorer,
    CeramicCache,
    Community,
    Customization,
    Scorer,
    WeightedScorer,
)
from scorer_fast.services.api_keys import new_api_key, sha256_hash

_sequence = count(1)


def address_of(n: int) -> str:
    return "0x" + f"{n:040x}"


def account(address: str | None = None) -> Account:
    n = next(_sequence)
    user = User.objects.create(username=f"user{n}-{secrets.token_hex(3)}")
    return Account.objects.create(address=address or address_of(10_000 + n), user=user)


def community(
    *,
    owner: Account | None = None,
    weights: dict[str, Any] | None = None,
    threshold: str = "20",
    scorer_type: str = "WEIGHTED_BINARY",
    rule: str = "LIFO",
    external_scorer_id: str | None = None,
    human_points_program: bool = False,
) -> Community:
    owner = owner or account()
    scorer = Scorer.objects.create(type=scorer_type, exclude_from_weight_updates=False)
    child = WeightedScorer if scorer_type == "WEIGHTED" else BinaryWeightedScorer
    child.objects.create(
        scorer_ptr=scorer, weights=weights if weights is not None else {}, threshold=Decimal(threshold)
    )
    return Community.objects.create(
        name=f"community {next(_sequence)}",
        description="test",
        account=owner,
        scorer=scorer,
        created_at=datetime.now(UTC),
        rule=rule,
        external_scorer_id=external_scorer_id,
        human_points_program=human_points_program,
    )


def allow_list_customization(community: Community, *, list_name: str, weight: str) -> Customization:
    """The community's customization (every NOT NULL column set) with one allow list: `AllowList#<list_name>`
    then weighs `weight`."""
    customization = Customization.objects.create(
        path=f"partner-{community.id}",
        scorer=community,
        use_custom_dashboard_panel=False,
        body_display_info_tooltip=False,
        button_action_type="Simple Link",
        show_explanation_panel=False,
        partner_name="p",
        nav_order=0,
        show_in_top_nav=False,
    )
    AllowList.objects.create(
        address_list=AddressList.objects.create(name=list_name), customization=customization, weight=weight
    )
    return customization


def api_key(
    owner: Account, *, storage: str = "sha256", revoked: bool = False, embed_rate_limit: str | None = "125/15m"
) -> str:
    """Create a key; storage is "sha256" (fast path), "pbkdf2" (legacy, migrates on use) or "sha256_in_hashed_key"."""
    key = new_api_key()
    prefix = key.split(".")[0]
    pbkdf2 = PBKDF2PasswordHasher().encode(key, "testsalt1234", iterations=1000)
    hashed_key, hashed_sha = {
        "sha256": (pbkdf2, sha256_hash(key)),
        "pbkdf2": (pbkdf2, None),
        "sha256_in_hashed_key": (sha256_hash(key), None),
    }[storage]
    AccountAPIKey.objects.create(
        id=f"{prefix}.{hashed_key}"[:150],
        prefix=prefix,
        hashed_key=hashed_key,
        hashed_key_sha256=hashed_sha,
        created=datetime.now(UTC),
        name=f"key {prefix}",
        revoked=revoked,
        account=owner,
        rate_limit="125/15m",
        embed_rate_limit=embed_rate_limit,
        create_scorers=False,
        read_scores=True,
        submit_passports=True,
        historical_endpoint=False,
    )
    return key


def cache_stamp(address: str, credential: dict[str, Any], *, provider: str | None = None) -> CeramicCache:
    now = datetime.now(UTC)
    return CeramicCache.objects.create(
        address=address,
        provider=provider or credential["credentialSubject"]["provider"],
        stamp=credential,
        created_at=now,
        updated_at=now,
        type=1,
        compose_db_save_status="",
        compose_db_stream_id="",
        proof_value=credential["proof"].get("proofValue", credential["proof"].get("jws", ""))[:256],
    )
