"""Test issuers (trusted by settings/test.py) and an untrusted one; keys are test-only material."""

from datetime import UTC, datetime, timedelta
from typing import Any

from demo.signing import issue_stamp, secp256k1_jwk

EIP712_ISSUER_JWK = secp256k1_jwk(bytes.fromhex("5c0b1ad9" * 8))  # did:ethr:0x2dc3be81…f2bc
ED25519_ISSUER_JWK = (
    '{"kty":"OKP","crv":"Ed25519","x":"vwVNkE1AedY5nVZ0tV-Zf9e__Bp4fuDMZYqUTooeEU4",'
    '"d":"mL4v2jTY-z1XGVvsNnNRXIeP8BuecjoB4s6cB8-5i1I"}'
)
UNTRUSTED_ISSUER_JWK = secp256k1_jwk(bytes.fromhex("0badc0de" * 8))


def signed_stamp(
    address: str,
    provider: str,
    *,
    nullifiers: list[str] | None = None,
    hash_value: str | None = None,
    days_valid: float = 30,
    issuer_jwk: str = EIP712_ISSUER_JWK,
    subject_id: str | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    issued = issued or datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    return issue_stamp(
        jwk=issuer_jwk,
        address=address,
        provider=provider,
        nullifiers=nullifiers,
        hash_value=hash_value,
        issued=issued,
        expires=datetime.now(UTC).replace(microsecond=0) + timedelta(days=days_valid),
        subject_id=subject_id,
    )
