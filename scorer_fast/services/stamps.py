"""The shared stamp-saving step used by the embed and ceramic-cache routes.

Submitted stamps are checked completely before anything is written, so bad input never leaves partial writes.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scorer_fast.db import ceramic
from scorer_fast.db.ceramic import NewCeramicRow
from scorer_fast.domain.credentials import subject_provider
from scorer_fast.domain.formats import cached_stamp_response
from scorer_fast.errors import BadRequest, TooManyStamps

MAX_BULK_CACHE_SIZE = 100
SOURCE_APP_PASSPORT = 1
SOURCE_APP_EMBED = 2
_MAX_PROVIDER_LENGTH = 256
_MAX_PROOF_VALUE_LENGTH = 256


@dataclass(frozen=True)
class SubmittedStamp:
    provider: Any
    credential: Any


def check_stamp_count(count: int) -> None:
    if count > MAX_BULK_CACHE_SIZE:
        raise TooManyStamps()


def _date(credential: dict[str, Any], key: str, index: int) -> datetime | None:
    raw = credential.get(key)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"Stamp {index}: {key} is not an ISO 8601 date.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_ceramic_rows(stamps: list[SubmittedStamp]) -> list[NewCeramicRow]:
    """Validate every submitted stamp; the message names the first bad one by its position."""
    check_stamp_count(len(stamps))
    rows: list[NewCeramicRow] = []
    seen: dict[str, int] = {}
    for index, stamp in enumerate(stamps):
        credential = stamp.credential
        if not isinstance(credential, dict):
            raise BadRequest(f"Stamp {index}: the credential must be a JSON object.")
        provider = stamp.provider
        if not isinstance(provider, str) or not provider:
            raise BadRequest(f"Stamp {index}: missing provider (credentialSubject.provider).")
        if len(provider) > _MAX_PROVIDER_LENGTH:
            raise BadRequest(f"Stamp {index}: provider is longer than {_MAX_PROVIDER_LENGTH} characters.")
        proof = credential.get("proof")
        proof_value = proof.get("proofValue") if isinstance(proof, dict) else None
        if not isinstance(proof_value, str) or not proof_value:
            raise BadRequest(f"Stamp {index} ({provider}): missing proof.proofValue.")
        if len(proof_value) > _MAX_PROOF_VALUE_LENGTH:
            raise BadRequest(f"Stamp {index} ({provider}): proof.proofValue is too long.")
        own_provider = subject_provider(credential)
        if not isinstance(own_provider, str) or not own_provider:
            raise BadRequest(f"Stamp {index} ({provider}): missing credentialSubject.provider.")
        if own_provider != provider:
            # Decision 19: a stamp counts only under its own provider, so it may only be stored under it.
            raise BadRequest(f"Stamp {index} ({provider}): provider does not match credentialSubject.provider.")
        if provider in seen:
            raise BadRequest(f"Stamp {index}: provider {provider} is also submitted as stamp {seen[provider]}.")
        seen[provider] = index
        rows.append(
            NewCeramicRow(
                provider=provider,
                stamp=credential,
                proof_value=proof_value,
                issuance_date=_date(credential, "issuanceDate", index),
                expiration_date=_date(credential, "expirationDate", index),
            )
        )
    return rows


def stamps_save(
    *,
    address: str,
    providers_to_replace: list[str],
    rows: list[NewCeramicRow],
    source_app: int | None,
    source_scorer_id: int | None,
    v1_only: bool = True,
) -> None:
    """Soft-delete the address's live rows of these providers, then insert the new rows. Runs inside the
    caller's transaction, under the address lock (`run_durable(…, lock_address=…)`), so concurrent writers of
    one address take turns."""
    now = datetime.now(UTC)
    if providers_to_replace:
        ceramic.soft_delete(address, providers_to_replace, now, v1_only=v1_only)
    ceramic.insert(address, rows, now, source_app=source_app, source_scorer_id=source_scorer_id)


def live_stamps(address: str) -> list[dict[str, Any]]:
    return [cached_stamp_response(row.id, row.address, row.provider, row.stamp) for row in ceramic.stamps_live(address)]
