"""Ceramic-cache JWTs (decision 8): RS256 from the SIWE login first, then the legacy HS256 access tokens.

Algorithms are pinned per key, `exp` is required on both kinds, there is no leeway.
"""

import base64
from functools import cache

from django.conf import settings

from scorer_fast.domain.addresses import normalize_address
from scorer_fast.errors import InvalidAddress, Unauthorized

INVALID_TOKEN = "Given token not valid for any token type"
SIWE_ISSUER = "passport-scorer"


@cache
def _siwe_public_key(configured: str) -> str | None:
    """The env var holds a PEM, or the base64 of one."""
    if not configured:
        return None
    if "BEGIN" in configured:
        return configured
    try:
        return base64.b64decode(configured).decode()
    except ValueError:
        return None


def _decode_rs256(token: str) -> dict | None:
    # Imported on first use: PyJWT loads `cryptography` (~25 ms of a Lambda cold start) and only
    # /ceramic-cache needs it.
    import jwt

    public_key = _siwe_public_key(settings.SIWE_JWT_PUBLIC_KEY)
    if public_key is None:
        return None
    try:
        return jwt.decode(
            token, public_key, algorithms=["RS256"], issuer=SIWE_ISSUER, options={"require": ["exp", "iss"]}, leeway=0
        )
    except (jwt.PyJWTError, ValueError):
        return None


def _decode_hs256(token: str) -> dict | None:
    import jwt

    try:
        claims = jwt.decode(
            token, settings.SECRET_KEY, algorithms=["HS256"], options={"require": ["exp", "jti"]}, leeway=0
        )
    except (jwt.PyJWTError, ValueError):
        return None
    return claims if claims.get("token_type") == "access" else None


def address_from_token(token: str) -> str:
    """The lower-cased address of the token's `did` claim, or Unauthorized."""
    claims = _decode_rs256(token) or _decode_hs256(token)
    if claims is None:
        raise Unauthorized(INVALID_TOKEN)
    did = claims.get("did")
    if not isinstance(did, str):
        raise Unauthorized("Token has no did claim.")
    try:
        return normalize_address(did.split(":")[-1])
    except InvalidAddress as exc:
        raise Unauthorized("Token did claim holds no valid address.") from exc
