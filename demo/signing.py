"""Issue Passport-style stamps with didkit: EIP-712 / did:ethr (production format) and Ed25519 / did:key (legacy).

Used by the demo-data command and the tests; the service itself only verifies.
"""

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import didkit
from cryptography.hazmat.primitives.asymmetric import ec

from scorer_fast.domain.addresses import did_for
from scorer_fast.domain.proofs import thread_loop

EIP712_TYPES = {
    "EIP712Domain": [{"name": "name", "type": "string"}],
    "Document": [
        {"name": "@context", "type": "string[]"},
        {"name": "credentialSubject", "type": "CredentialSubject"},
        {"name": "expirationDate", "type": "string"},
        {"name": "issuanceDate", "type": "string"},
        {"name": "issuer", "type": "string"},
        {"name": "proof", "type": "Proof"},
        {"name": "type", "type": "string[]"},
    ],
    "CredentialSubject": [
        {"name": "@context", "type": "@context"},
        {"name": "nullifiers", "type": "string[]"},
        {"name": "id", "type": "string"},
        {"name": "provider", "type": "string"},
    ],
    "@context": [{"name": "nullifiers", "type": "NullifiersContext"}, {"name": "provider", "type": "string"}],
    "NullifiersContext": [{"name": "@container", "type": "string"}, {"name": "@type", "type": "string"}],
    "Proof": [
        {"name": "@context", "type": "string"},
        {"name": "created", "type": "string"},
        {"name": "proofPurpose", "type": "string"},
        {"name": "type", "type": "string"},
        {"name": "verificationMethod", "type": "string"},
    ],
}
_CONTEXTS = ["https://www.w3.org/2018/credentials/v1", "https://w3id.org/vc/status-list/2021/v1"]


def secp256k1_jwk(private_key: bytes) -> str:
    numbers = ec.derive_private_key(int.from_bytes(private_key, "big"), ec.SECP256K1()).public_key().public_numbers()

    def b64(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    return json.dumps(
        {
            "kty": "EC",
            "crv": "secp256k1",
            "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big")),
            "d": b64(private_key),
        }
    )


def _run(coroutine_factory) -> Any:
    async def runner():
        return await coroutine_factory()

    return thread_loop().run_until_complete(runner())


def _iso_z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def issue_stamp(
    *,
    jwk: str,
    address: str,
    provider: str,
    nullifiers: list[str] | None = None,
    hash_value: str | None = None,
    issued: datetime,
    expires: datetime | None = None,
    subject_id: str | None = None,
) -> dict[str, Any]:
    """A signed credential. A secp256k1 key signs EthereumEip712Signature2021 as did:ethr; an Ed25519 key signs
    Ed25519Signature2018 as did:key (its nullifiers context needs "@id" for JSON-LD expansion)."""
    is_ed25519 = '"Ed25519"' in jwk
    method = "key" if is_ed25519 else "ethr"
    issuer = didkit.key_to_did(method, jwk)
    subject: dict[str, Any] = {
        "id": subject_id or did_for(address),
        "@context": {
            "provider": "https://schema.org/Text",
            "nullifiers": {("@id" if is_ed25519 else "@type"): "https://schema.org/Text", "@container": "@list"},
        },
        "provider": provider,
    }
    if hash_value is not None:
        subject["hash"] = hash_value
        subject["@context"] = {"provider": "https://schema.org/Text", "hash": "https://schema.org/Text"}
    else:
        subject["nullifiers"] = nullifiers if nullifiers is not None else [f"v0:{provider}:{address}"]
    credential = {
        "@context": _CONTEXTS,
        "type": ["VerifiableCredential"],
        "issuer": issuer,
        "issuanceDate": _iso_z(issued),
        "expirationDate": _iso_z(expires or issued + timedelta(days=90)),
        "credentialSubject": subject,
    }
    if is_ed25519:
        verification_method = _run(lambda: didkit.key_to_verification_method("key", jwk))
        options: dict[str, Any] = {"proofPurpose": "assertionMethod", "verificationMethod": verification_method}
    else:
        options = {
            "proofPurpose": "assertionMethod",
            "verificationMethod": issuer + "#controller",
            "type": "EthereumEip712Signature2021",
            "eip712Domain": {
                "types": EIP712_TYPES,
                "primaryType": "Document",
                "domain": {"name": "VerifiableCredential"},
            },
        }
    signed = _run(lambda: didkit.issue_credential(json.dumps(credential), json.dumps(options), jwk))
    return json.loads(signed)
