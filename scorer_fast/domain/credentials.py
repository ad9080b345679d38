"""Which stamps count: trusted issuer, not expired, fields present, subject DID matches, proof verifies."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)


def subject_provider(credential: Any) -> Any:
    """`credentialSubject.provider` of a credential of any shape, None where it has none (not yet type-checked)."""
    subject = credential.get("credentialSubject") if isinstance(credential, dict) else None
    return subject.get("provider") if isinstance(subject, dict) else None


@dataclass(frozen=True)
class CachedStamp:
    """A live row of ceramic_cache_ceramiccache: the provider column and the stored credential."""

    provider: str
    credential: dict[str, Any]
    # jsonb's text of the stored credential, when it was read from the database: what the proof cache and the
    # registry_stamp comparison use, so a stored credential is never serialized again on the hot path.
    text: str | None = field(default=None, compare=False)
    # The row version it was read as ("<id>.<xmin>"): equal versions are the same row, unchanged (any UPDATE of a
    # row gives it a new xmin), so a read under the address lock can tell that the stamps read before it still hold.
    version: str | None = field(default=None, compare=False)


def parse_expiration(credential: dict[str, Any]) -> datetime | None:
    """The credential's expirationDate as an aware datetime, or None when missing, malformed or naive."""
    raw = credential.get("expirationDate") if isinstance(credential, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def kept_expiration(credential: dict[str, Any]) -> datetime:
    """The expiration of a stamp that `select_valid_stamps` kept (it drops every stamp without a valid one)."""
    expiration = parse_expiration(credential)
    if expiration is None:
        raise ValueError("a stamp without a valid expirationDate got past select_valid_stamps")
    return expiration


def credential_problems(credential: Any, did: str) -> list[str]:
    """The original's field checks, with its messages (registry.utils.validate_credential)."""
    if not credential or not isinstance(credential, dict):
        return ["Missing or invalid attribute: credential"]
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict):
        return ["Missing attribute: credentialSubject"]
    problems = []
    if not subject.get("hash") and not subject.get("nullifiers"):
        problems.append("Missing attribute: hash and nullifiers (either one must be present)")
    subject_id = subject.get("id")
    if not subject_id:
        problems.append("Missing attribute: id")
    if not subject.get("provider"):
        problems.append("Missing attribute: provider")
    if isinstance(subject_id, str) and subject_id.lower() != did:
        problems.append("Did mismatch")
    return problems


def select_valid_stamps(
    stamps: list[CachedStamp],
    *,
    did: str,
    trusted_issuers: frozenset[str],
    now: datetime,
    verify_proofs: Callable[[list[CachedStamp]], list[bool]],
    provider_binding: bool = True,
) -> list[CachedStamp]:
    """Keep the stamps that count, in order. Cheap checks first; only survivors reach didkit, all at once.
    `provider_binding=False` is the original's rule (no decision 19), for the audit's counterfactual only."""
    candidates = []
    for stamp in stamps:
        credential = stamp.credential
        issuer = credential.get("issuer") if isinstance(credential, dict) else None
        if not isinstance(issuer, str) or issuer not in trusted_issuers:
            logger.info("stamp dropped: untrusted issuer", extra={"provider": stamp.provider})
            continue
        expiration = parse_expiration(credential)
        if expiration is None or expiration < now:
            logger.info("stamp dropped: expired or without a valid expirationDate", extra={"provider": stamp.provider})
            continue
        if provider_binding and subject_provider(credential) != stamp.provider:
            # Decision 19: a row stored under another provider name than its credential's never counts.
            logger.info(
                "stamp dropped: provider column differs from the credential", extra={"provider": stamp.provider}
            )
            continue
        problems = credential_problems(credential, did)
        if problems:
            logger.info("stamp dropped: %s", "; ".join(problems), extra={"provider": stamp.provider})
            continue
        candidates.append(stamp)
    verdicts = verify_proofs(candidates) if candidates else []
    valid = []
    for stamp, verified in zip(candidates, verdicts, strict=True):
        if verified:
            valid.append(stamp)
        else:
            logger.info("stamp dropped: proof does not verify", extra={"provider": stamp.provider})
    return valid
