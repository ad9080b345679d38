"""Proof verification: whole-document verdict cache (warm-cache tampering), junk proofs that make didkit raise
or panic, and verification before the transaction and the address lock."""

import copy

import pytest
from django.test import Client

from scorer_fast.services.scoring import proof_verifier
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import Background, foreign_writer, wait_until_blocked_by

A = "0x" + "a" * 40


def score(community_id: int, address: str = A) -> dict:
    response = Client().get(f"/internal/embed/score/{community_id}/{address}")
    assert response.status_code == 200, response.content
    return response.json()["score"]


def _tampered(credential: dict, change) -> dict:
    copied = copy.deepcopy(credential)
    change(copied)
    return copied


TAMPERINGS = {
    # the same issuer, subject and proofValue: only a cache keyed by the whole document tells them apart
    "nullifiers": lambda c: c["credentialSubject"].update(nullifiers=["v0:someone-else"]),
    "expirationDate": lambda c: c.update(expirationDate="2099-01-01T00:00:00Z"),
    "issuanceDate": lambda c: c.update(issuanceDate="2020-01-01T00:00:00Z"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("field", TAMPERINGS)
def test_a_credential_tampered_after_the_genuine_one_was_cached_does_not_count(field):
    community = factories.community(weights={"Google": 1}, threshold="1")
    genuine = signed_stamp(A, "Google")
    row = factories.cache_stamp(A, genuine)
    assert score(community.id)["score"] == "1.00000"
    assert proof_verifier().cached_verdict(genuine) is True  # the cache is warm

    row.stamp = _tampered(genuine, TAMPERINGS[field])
    row.save()
    body = score(community.id)
    assert body["score"] == "0.00000" and body["stamps"] == {}
    assert proof_verifier().cached_verdict(row.stamp) is False  # didkit's definite "no" is remembered


JUNK_PROOFS = {
    "panics": lambda c: c["proof"].update(proofValue="0xdeadbeef"),  # didkit's EIP-712 code panics
    "raises": lambda c: c["proof"].update(type="Nope"),  # didkit raises
}


@pytest.mark.django_db
@pytest.mark.parametrize("junk", JUNK_PROOFS)
def test_a_proof_that_makes_didkit_fail_is_invalid_for_the_request_and_not_cached(junk):
    community = factories.community(weights={"Google": 1, "Ens": 2}, threshold="1")
    factories.cache_stamp(A, signed_stamp(A, "Ens"))
    broken = factories.cache_stamp(A, _tampered(signed_stamp(A, "Google"), JUNK_PROOFS[junk])).stamp
    body = score(community.id)
    assert body["score"] == "2.00000" and list(body["stamps"]) == ["Ens"]
    assert proof_verifier().cached_verdict(broken) is None  # an exception is no verdict


def test_proofs_are_verified_before_the_address_lock_is_taken(committed_db):
    """While another request of the address holds the lock, a new request has already verified its stamps."""
    community = factories.community(weights={"Google": 1}, threshold="1")
    stamp = signed_stamp(A, "Google")
    factories.cache_stamp(A, stamp)
    with foreign_writer() as other:
        other.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ["scorer_fast:address:" + A])
        waiting = Background(lambda: score(community.id))
        wait_until_blocked_by(other)
        assert proof_verifier().cached_verdict(stamp) is True
        other.commit()
        assert waiting.result()["score"] == "1.00000"


_PANIC_SCRIPT = """
import json, logging, os, sys, time
from scorer_fast.wsgi import application  # the serving entry point installs the relay
from scorer_fast.domain.proofs import ProofVerifier
from tests.credentials import signed_stamp

seen = []
class Seen(logging.Handler):
    def emit(self, record):
        seen.append(record.getMessage())
# On the root logger after its stdout handler: a record seen here has been written out whole (else the relay
# thread could still be writing its line into the verdicts line printed below).
logging.getLogger().addHandler(Seen())

stamp = signed_stamp("0x" + "a" * 40, "Google")
stamp["proof"]["proofValue"] = "0xdeadbeef"
verdicts = ProofVerifier(10).verify_many([stamp])
os.write(2, b'leaked {"proofValue": "0xsecretsecret"}\\n')
deadline = time.monotonic() + 10
while not any("leaked" in line for line in seen) and time.monotonic() < deadline:
    time.sleep(0.01)
print(json.dumps({"verdicts": verdicts}))
sys.stdout.flush()
os._exit(0)
"""


def test_didkit_panic_output_becomes_redacted_json_log_lines():
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.test", "RUST_BACKTRACE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _PANIC_SCRIPT], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    assert "panicked" not in result.stderr and "0xsecretsecret" not in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[-1] == {"verdicts": [False]}
    native = [line for line in lines[:-1] if line.get("logger") == "native.stderr"]
    assert any("panicked" in line["msg"] for line in native), result.stdout
    assert "0xsecretsecret" not in result.stdout and any("***" in line["msg"] for line in native)
