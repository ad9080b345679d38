"""A made-up wallet that signs the submit-passport message the way a partner's `personal_sign` does."""

from eth_account import Account
from eth_account.messages import encode_defunct

from scorer_fast.domain.signatures import signing_message

WALLET = Account.from_key(bytes.fromhex("7e57" * 16))  # test-only key
WALLET_ADDRESS = WALLET.address.lower()
OTHER_WALLET = Account.from_key(bytes.fromhex("0e1e" * 16))


def sign_nonce(nonce: str, wallet=WALLET) -> str:
    return "0x" + wallet.sign_message(encode_defunct(text=signing_message(nonce))).signature.hex()
