"""Ethereum addresses as the original treats them: lower-cased first, then 40 hex digits with an optional 0x."""

import re

from scorer_fast.errors import InvalidAddress

_HEX_ADDRESS = re.compile(r"(0x)?[0-9a-f]{40}")
DID_PREFIX = "did:pkh:eip155:1:"


def normalize_address(raw: str) -> str:
    address = raw.lower() if isinstance(raw, str) else ""
    if not _HEX_ADDRESS.fullmatch(address):
        raise InvalidAddress()
    return address


def did_for(address: str) -> str:
    return DID_PREFIX + address
