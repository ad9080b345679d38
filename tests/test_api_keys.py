"""Partner API keys: both headers, SHA-256 fast path, PBKDF2 fallback and migration, refusals."""

import pytest

from scorer_fast.models import AccountAPIKey
from scorer_fast.services.api_keys import sha256_hash
from tests import factories

pytestmark = pytest.mark.django_db
ADDRESS = "0x" + "a" * 40
INVALID = {"error": "Invalid API Key."}


@pytest.fixture
def owner_and_community():
    owner = factories.account()
    return owner, factories.community(owner=owner)


def score(client, community, **headers):
    return client.get(f"/v2/stamps/{community.id}/score/{ADDRESS}", **headers)


@pytest.mark.parametrize("storage", ["sha256", "pbkdf2", "sha256_in_hashed_key"])
def test_it_accepts_every_stored_key_format(client, owner_and_community, storage):
    owner, community = owner_and_community
    key = factories.api_key(owner, storage=storage)
    assert score(client, community, HTTP_X_API_KEY=key).status_code == 200


def test_it_fills_the_sha256_column_after_a_pbkdf2_match(client, owner_and_community):
    owner, community = owner_and_community
    key = factories.api_key(owner, storage="pbkdf2")
    row = AccountAPIKey.objects.get(prefix=key.split(".")[0])
    assert row.hashed_key_sha256 is None
    assert score(client, community, HTTP_X_API_KEY=key).status_code == 200
    row.refresh_from_db()
    assert row.hashed_key_sha256 == sha256_hash(key) and row.hashed_key.startswith("pbkdf2_sha256$")


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "Api-Key"])
def test_it_reads_the_key_from_authorization_with_any_scheme(client, owner_and_community, scheme):
    owner, community = owner_and_community
    key = factories.api_key(owner)
    assert score(client, community, HTTP_AUTHORIZATION=f"{scheme} {key}").status_code == 200


def test_it_refuses_revoked_wrong_unknown_and_missing_keys(client, owner_and_community):
    owner, community = owner_and_community
    revoked = factories.api_key(owner, revoked=True)
    good = factories.api_key(owner)
    legacy = factories.api_key(owner, storage="pbkdf2")
    wrong_secret = good.split(".")[0] + ".x" * 16
    cases = [
        {"HTTP_X_API_KEY": revoked},
        {"HTTP_X_API_KEY": wrong_secret},
        {"HTTP_X_API_KEY": legacy.split(".")[0] + ".wrong"},
        {"HTTP_X_API_KEY": "unknown1.secret"},
        {"HTTP_AUTHORIZATION": "Token 1234"},
        {},
    ]
    for headers in cases:
        response = score(client, community, **headers)
        assert (response.status_code, response.json()) == (401, INVALID), headers
    assert AccountAPIKey.objects.get(prefix=legacy.split(".")[0]).hashed_key_sha256 is None


def test_a_wrong_secret_never_falls_back_to_pbkdf2(client, owner_and_community):
    owner, community = owner_and_community
    key = factories.api_key(owner, storage="sha256")
    row = AccountAPIKey.objects.get(prefix=key.split(".")[0])
    row.hashed_key_sha256 = sha256_hash("something else")
    row.save()
    assert score(client, community, HTTP_X_API_KEY=key).status_code == 401


def test_demo_key_aliases_map_to_the_demo_key(client, owner_and_community, settings):
    owner, community = owner_and_community
    settings.DEMO_API_KEY = factories.api_key(owner)
    settings.DEMO_API_KEY_ALIASES = ["public-demo-alias"]
    assert score(client, community, HTTP_X_API_KEY="public-demo-alias").status_code == 200


def test_validate_api_key_returns_the_embed_rate_limit(client, owner_and_community):
    owner, _community = owner_and_community
    limited = factories.api_key(owner, embed_rate_limit="125/15m")
    unlimited = factories.api_key(owner, embed_rate_limit="")
    unset = factories.api_key(owner, embed_rate_limit=None)
    for key, expected in ((limited, "125/15m"), (unlimited, ""), (unset, None)):
        response = client.get("/internal/embed/validate-api-key", HTTP_X_API_KEY=key)
        assert (response.status_code, response.json()) == (200, {"embed_rate_limit": expected})


def test_validate_api_key_refuses_bad_revoked_and_missing_keys(client, owner_and_community):
    owner, _community = owner_and_community
    revoked = factories.api_key(owner, revoked=True)
    for headers in ({"HTTP_X_API_KEY": "bad.key"}, {"HTTP_X_API_KEY": revoked}, {}):
        response = client.get("/internal/embed/validate-api-key", **headers)
        assert (response.status_code, response.json()) == (401, {"detail": "Invalid API Key."})
