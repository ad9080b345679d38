"""What /docs says, written for a partner reading it, and the typed shapes it shows. Only the OpenAPI document
uses this: the routes keep serializing their bodies as before (no per-request validation is added)."""

from typing import Any

from scorer_fast.schemas import StampEntry

API_DESCRIPTION = """\
Passport scoring. Score an address with one of your scorers and read why it scored what it did.

**Authentication.** Partner routes take your API key in the `X-API-Key` header (create keys in the developer
portal). Each key has a rate limit; past it a route answers 429.

**Formats.** Scores are decimal strings with 5 places (`"23.10000"`); times are ISO 8601 in UTC. Errors answer
`{"error": "<what went wrong>"}` with a 4xx status; the internal routes answer `{"detail": ...}`.
"""

V2_SCORE_SUMMARY = "Score an address with one of your scorers"
V2_SCORE_DESCRIPTION = """\
Scores `address` with the scorer `scorer_id` (one of your account's scorers, by id or external id) from the
stamps the address holds now, saves the score and returns it.

- `score`: the sum of the weights of the stamps that counted; `threshold`: the scorer's passing score;
  `passing_score`: whether `score` reaches `threshold`.
- `stamps`: every stamp the address holds that is valid, by provider: what it added to the score (`score`),
  whether it was de-duplicated (`dedup`: another address already uses the same credential in this scorer, so it
  adds 0) and when it expires.
- `expiration_timestamp`: when the first counted stamp expires (the score is lower after that).

400: the address is not an Ethereum address. 401: the key is missing, unknown or revoked. 404: the scorer is not
one of your account's. 429: the key's rate limit is reached.
"""

SUBMIT_PASSPORT_DESCRIPTION = """\
The v1 route: scores `address` with the scorer `scorer_id` (one of your account's) and returns the stored score
with its evidence. `signature` and `nonce` are optional: an EIP-191 signature of a nonce from the signing-message
route proves the caller controls the address.
"""

STAMPS_DESCRIPTION = (
    "Each valid stamp the address holds, by provider: the points it added to the score (`score`), whether another "
    "address already uses the same credential in this scorer (`dedup`: then it adds 0) and when it expires."
)


TAGS = [
    {"name": "v2", "description": "For partners: score addresses with your scorers (API key)."},
    {"name": "registry", "description": "For partners: the v1 scoring route (API key)."},
    {"name": "ceramic-cache", "description": "For the Passport app: the signed-in user's stamps and score."},
    {"name": "embed", "description": "For the embed widget, behind the private load balancer."},
    {"name": "internal", "description": "For Passport's own services, behind the private load balancer."},
    {"name": "health", "description": "For load balancers and monitoring."},
]

# (method, path) → summary of the routes that are not the partners' (theirs are described on their decorators).
SUMMARIES = {
    ("post", "/ceramic-cache/stamps/bulk"): "Add stamps to the signed-in address (replacing those providers), rescore",
    ("patch", "/ceramic-cache/stamps/bulk"): "Replace the signed-in address's stamps of these providers, rescore",
    ("delete", "/ceramic-cache/stamps/bulk"): "Delete the signed-in address's stamps of these providers, rescore",
    ("get", "/ceramic-cache/score/{address}"): "The signed-in address's score (the stored one while it is valid)",
    ("post", "/ceramic-cache/score/{address}"): "Rescore the signed-in address",
    ("get", "/ceramic-cache/stamp"): "The stamps an address holds",
    ("get", "/ceramic-cache/weights"): "The Passport app scorer's stamp weights",
    ("get", "/internal/embed/validate-api-key"): "Check a partner API key; answers its embed rate limit",
    ("post", "/internal/embed/stamps/{address}"): "Add stamps to an address and score it",
    ("get", "/internal/embed/score/{scorer_id}/{address}"): "An address's stamps and score",
    ("get", "/internal/embed/weights"): "A scorer's stamp weights (deprecated)",
    ("get", "/internal/score/v2/{scorer_id}/{address}"): "Score an address with a scorer",
    ("get", "/health"): "Whether the service and its database answer",
}


def partner_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The generated document with tag descriptions, route summaries and typed `stamps` entries."""
    schema["tags"] = TAGS
    for (method, route), summary in SUMMARIES.items():
        operation = schema.get("paths", {}).get(route, {}).get(method)
        if operation is not None:
            operation["summary"] = summary
    return with_typed_stamps(schema)


def with_typed_stamps(schema: dict[str, Any]) -> dict[str, Any]:
    """ScoreOut.stamps is a plain dict on the wire path (validated nowhere); /docs shows each entry's shape."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    score = components.get("ScoreOut")
    if score is None:
        return schema
    components["StampEntry"] = StampEntry.model_json_schema(ref_template="#/components/schemas/{model}")
    score["properties"]["stamps"] = {
        "title": "Stamps",
        "description": STAMPS_DESCRIPTION,
        "type": "object",
        "additionalProperties": {"$ref": "#/components/schemas/StampEntry"},
    }
    return schema
