"""The demo credential issuer: the public test key of the original's Rust comparison tests (never trusted in
production; settings/checks.py refuses it). Its DID is settings.DEMO_ISSUER_DID."""

from demo.signing import secp256k1_jwk

DEMO_ISSUER_PRIVATE_KEY = bytes.fromhex("123456789abcdef01122334455667788aabbccddeeff00112233445566778899")


def demo_issuer_jwk() -> str:
    return secp256k1_jwk(DEMO_ISSUER_PRIVATE_KEY)
