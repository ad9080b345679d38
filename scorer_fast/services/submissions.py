"""POST /registry/submit-passport (v1): check the body, the address, the scorer and the optional signed nonce,
then score through the same pipeline as every other route and answer the v1 `DetailedScoreResponse`."""

import json
from dataclasses import dataclass
from typing import Any

from scorer_fast.db import keys
from scorer_fast.db.transactions import run_durable
from scorer_fast.domain.addresses import normalize_address
from scorer_fast.domain.computation import ScoreFields
from scorer_fast.domain.formats import detailed_score_response
from scorer_fast.domain.signatures import recover_signer, signing_message
from scorer_fast.errors import BadRequest, MissingScorerId, NotFound
from scorer_fast.observability import annotate
from scorer_fast.services import communities, scoring
from scorer_fast.services.analytics import ApiUsage
from scorer_fast.services.api_keys import ApiKeyPrincipal

NO_SCORER = "No scorer matches the given criteria."
SIGNER_MISMATCH = "Address does not match signature."
INVALID_NONCE = "Invalid nonce."
_LEGACY_COMMUNITY_DEFAULT = "Deprecated"


@dataclass(frozen=True)
class Submission:
    address: str
    scorer_id: str  # "" when neither scorer_id nor the legacy community field names one
    signature: str
    nonce: str


def submit_passport(*, principal: ApiKeyPrincipal, raw_body: bytes, usage: ApiUsage) -> dict[str, Any]:
    usage.payload = None  # stays NULL in the usage row when the body cannot be parsed
    body = parse_json_body(raw_body)
    usage.payload = body
    submission = read_submission(body)
    address = normalize_address(submission.address)  # checked before the scorer, as the original does
    if not submission.scorer_id:
        raise MissingScorerId()
    community, stamps = communities.community_of_account(submission.scorer_id, principal.account_id, stamps_of=address)
    if community is None:
        raise NotFound(NO_SCORER)
    if submission.signature and recover_signer(signing_message(submission.nonce), submission.signature) != address:
        raise BadRequest(SIGNER_MISMATCH)  # the nonce is not spent
    annotate(address=address, scorer_id=community.id)
    proofs = scoring.check_proofs_ahead(address, stored=stamps)  # didkit runs before the transaction and the lock

    def spend_nonce_and_score() -> ScoreFields:
        if submission.signature and not keys.nonce_spend(submission.nonce):
            raise BadRequest(INVALID_NONCE)
        return scoring.score_address(address=address, community=community, proofs=proofs)

    fields = run_durable(spend_nonce_and_score, lock_address=address)
    config = keys.scorer_config_get(community.scorer_id)  # read after scoring, like the original
    return detailed_score_response(address, fields, scorer_type=config.scorer_type if config else "")


def parse_json_body(raw: bytes) -> Any:
    """An empty body is `{}` (the original's Lambda); anything else must be JSON."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from exc


def read_submission(body: Any) -> Submission:
    """The original's payload model: `address` a required string, `signature`/`nonce` strings, `scorer_id` and
    `community` turned into strings whatever their JSON type (`401` → "401", `null` → "None"); other keys ignored."""
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    if "address" not in body:
        raise BadRequest("Missing field: address.")
    for name in ("address", "signature", "nonce"):
        if name in body and not isinstance(body[name], str):
            raise BadRequest(f"Field {name} must be a string.")
    scorer_id = str(body["scorer_id"]) if "scorer_id" in body else ""
    community = str(body["community"]) if "community" in body else _LEGACY_COMMUNITY_DEFAULT
    if not scorer_id and community != _LEGACY_COMMUNITY_DEFAULT:
        scorer_id = community
    return Submission(body["address"], scorer_id, body.get("signature", ""), body.get("nonce", ""))
