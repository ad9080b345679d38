"""JWTs as the original mints them: RS256 from the SIWE login, and legacy HS256 access tokens (ninja_jwt style,
minted here with simplejwt, its upstream)."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PRIVATE_PEM = _PRIVATE.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
RSA_PUBLIC_PEM = (
    _PRIVATE.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def siwe_claims(address: str, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "did": f"did:pkh:eip155:1:{address.lower()}",
        "iat": now,
        "exp": now + 7 * 24 * 3600,
        "jti": str(uuid.uuid4()),
        "iss": "passport-scorer",
        "token_type": "access",
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def rs256_token(address: str, **overrides) -> str:
    return jwt.encode(siwe_claims(address, **overrides), RSA_PRIVATE_PEM, algorithm="RS256")


def legacy_hs256_token(address: str) -> str:
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken()
    token["did"] = f"did:pkh:eip155:1:{address.lower()}"
    return str(token)


def hs256_token(secret: str, claims: dict) -> str:
    """Signed by hand: PyJWT itself refuses a PEM as an HMAC secret, the key-confusion attack we test against."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + b"." + b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()
