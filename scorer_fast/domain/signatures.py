"""EIP-191 (`personal_sign`) signatures of POST /registry/submit-passport, recovered with eth-account."""

import re
import sys
from functools import cache
from typing import Any

from scorer_fast.errors import BadRequest

_HEX = re.compile(r"(0x)?([0-9a-fA-F]*)")
SIGNATURE_BYTES = 65


def signing_message(nonce: str) -> str:
    """The text the partner's wallet signs; the nonce exactly as given (case kept)."""
    return (
        "I hereby agree to submit my address in order to score my associated Gitcoin Passport from Ceramic."
        f"\n\nNonce: {nonce}\n"
    )


def recover_signer(message: str, signature: str) -> str:
    """The lower-case address whose key made `signature` (65 bytes of hex, `0x` optional, v 0/1, 27/28 or EIP-155
    style) over `message`. A signature that cannot be decoded is bad input (400), not a server error."""
    match = _HEX.fullmatch(signature)
    if match is None or len(match.group(2)) % 2:
        raise BadRequest("Invalid signature: not a hex string.")
    if len(match.group(2)) // 2 != SIGNATURE_BYTES:
        raise BadRequest(f"Invalid signature: expected {SIGNATURE_BYTES} bytes, got {len(match.group(2)) // 2}.")
    account, encode_defunct, bad_signature = _eth_account()
    try:
        return account.recover_message(encode_defunct(text=message), signature=signature).lower()
    except (ValueError, IndexError, bad_signature) as exc:
        raise BadRequest(f"Invalid signature: no signer can be recovered from it ({exc}).") from exc


@cache
def _eth_account() -> tuple[Any, Any, type[Exception]]:
    """Imported on first use: eth-account takes ~1 s to import, which no other route should pay at start-up.

    Its dependency py_ecc raises the interpreter's recursion limit to 100,000 at import; with that limit a request
    body of 100,000 `[` overflows the C stack inside the JSON parser and the worker dies (SIGSEGV) instead of
    answering 400. Recovering a signature needs no deep recursion, so the limit is put back."""
    recursion_limit = sys.getrecursionlimit()
    try:
        from eth_account import Account
        from eth_account.messages import encode_defunct
        from eth_keys.exceptions import BadSignature
    finally:
        sys.setrecursionlimit(recursion_limit)
    return Account, encode_defunct, BadSignature
