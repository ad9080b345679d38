"""Decision 19: a stamp counts only under its own provider (credentialSubject.provider)."""

import json

import pytest

from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import count_rows
from tests.tokens import RSA_PUBLIC_PEM, rs256_token

pytestmark = pytest.mark.django_db
A = "0x" + "a" * 40


@pytest.fixture
def ceramic(settings):
    settings.SIWE_JWT_PUBLIC_KEY = RSA_PUBLIC_PEM
    community = factories.community(weights={"Google": 7, "Ens": 7, "Github": 7}, threshold="20")
    settings.CERAMIC_CACHE_SCORER_ID = community.id
    return community


def send(client, method: str, body) -> tuple[int, dict]:
    response = getattr(client, method)(
        "/ceramic-cache/stamps/bulk",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {rs256_token(A)}",
    )
    return response.status_code, response.json()


@pytest.mark.parametrize("method", ["post", "patch"])
def test_one_stamp_under_several_provider_names_is_refused_and_nothing_is_written(client, ceramic, method):
    google = signed_stamp(A, "Google")
    body = [{"provider": name, "stamp": google} for name in ("Google", "Ens", "Github")]
    assert send(client, method, body) == (
        400,
        {"error": "Stamp 1 (Ens): provider does not match credentialSubject.provider."},
    )
    assert count_rows("ceramic_cache_ceramiccache") == 0 and count_rows("registry_score") == 0


@pytest.mark.parametrize("method", ["post", "patch"])
def test_a_credential_without_a_subject_provider_is_refused(client, ceramic, method):
    stamp = signed_stamp(A, "Google")
    del stamp["credentialSubject"]["provider"]
    assert send(client, method, [{"provider": "Google", "stamp": stamp}]) == (
        400,
        {"error": "Stamp 0 (Google): missing credentialSubject.provider."},
    )
    assert count_rows("ceramic_cache_ceramiccache") == 0


def test_scoring_ignores_rows_stored_under_another_providers_name(client, ceramic):
    """Such rows exist already: the original never checked. Only the row under its own name counts."""
    google = signed_stamp(A, "Google")
    for name in ("Google", "Ens", "Github"):
        factories.cache_stamp(A, google, provider=name)
    factories.cache_stamp(A, {**signed_stamp(A, "Ens"), "credentialSubject": "not an object"}, provider="Discord")
    response = client.post(
        f"/ceramic-cache/score/{A}",
        "{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {rs256_token(A)}",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["score"] == "7.00000" and list(body["stamps"]) == ["Google"] and body["passing_score"] is False
