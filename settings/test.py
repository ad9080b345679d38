"""Test overrides only. The test issuers' keys live in tests/credentials.py."""

import os
from pathlib import Path

# The suite runs on its own embedded server (stopped at the end of the run), apart from the one `serve` uses.
os.environ.setdefault("PGSERVER_DATA", str(Path(__file__).resolve().parent.parent / ".pgdata-test"))
# Tests run with the development opt-in (embedded PostgreSQL, the demo app); never in production mode.
os.environ["SCORER_ENV"] = "development"

from settings.base import *  # noqa: E402, F403

TEST_EIP712_ISSUER_DID = "did:ethr:0x2dc3be814436b26349facf130bfb281391c9f2bc"
TEST_ED25519_ISSUER_DID = "did:key:z6MksJvc5xDnuaw53K2Cr6EJUUMhKWgbcfvi7Y6hdniq2nNq"
TRUSTED_IAM_ISSUERS = [TEST_EIP712_ISSUER_DID, TEST_ED25519_ISSUER_DID]
SECRET_KEY = "scorer-fast-test-secret-key-0123456789"
CGRANTS_API_TOKEN = "scorer-fast-test-internal-token"
CERAMIC_CACHE_SCORER_ID = None  # tests set it per case with the settings fixture
FF_MULTI_NULLIFIER = False
FF_API_ANALYTICS = False
DEBUG = False
# Fast hashing for test users; API-key PBKDF2 hashes carry their own iteration count.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
