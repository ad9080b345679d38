"""One function per route operation. Each write use case is one durable transaction: the exception of a 4xx
leaves the atomic block (rolling back) before ninja's handler renders it."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from scorer_fast.caching import TtlCache
from scorer_fast.db import ceramic, keys, scores
from scorer_fast.db.ceramic import NewCeramicRow
from scorer_fast.db.keys import CommunityRow
from scorer_fast.db.transactions import run_durable
from scorer_fast.domain.addresses import normalize_address
from scorer_fast.domain.credentials import CachedStamp, subject_provider
from scorer_fast.domain.formats import score_response
from scorer_fast.domain.proofs import RequestProofs
from scorer_fast.errors import BadRequest, InvalidAddress, InvalidScorerId, NotFound, ScoreCalculationFailed
from scorer_fast.observability import annotate
from scorer_fast.services import communities, scoring, seen_stamps
from scorer_fast.services.api_keys import ApiKeyPrincipal
from scorer_fast.services.stamps import (
    SOURCE_APP_EMBED,
    SOURCE_APP_PASSPORT,
    SubmittedStamp,
    check_stamp_count,
    live_stamps,
    stamps_save,
    to_ceramic_rows,
)

NO_SCORER = "No scorer matches the given criteria."
NO_COMMUNITY = "No Community matches the given query."
CERAMIC_COMMUNITY_MISSING = (
    "Community matching the configured scorer id does not exist! This is probably a misconfiguration!"
)
NOTHING_TO_DELETE = "Unable to find stamp to delete."


def _demo_scorer_if_negative(scorer_id: int) -> int | None:
    return settings.DEMO_API_SCORER_ID if scorer_id < 0 else scorer_id


def _score(
    address: str, community: CommunityRow, proofs: RequestProofs, *, ends_transaction: bool = False
) -> dict[str, Any]:
    fields = scoring.score_address(
        address=address, community=community, proofs=proofs, ends_transaction=ends_transaction
    )
    return score_response(address, fields)


def _rescore(
    address: str, community: CommunityRow, stamps: list[CachedStamp], *, guess: list[CachedStamp] | None = None
) -> dict[str, Any]:
    """Proofs are checked before the transaction; the transaction only reads, de-duplicates and writes.
    `stamps`: the address's live stamps, read with the community; or, with a `guess` (the stamps this worker last
    read, scorer_fast/services/seen_stamps.py), nothing read: the statement under the lock checks the guess, and
    when the live rows differ the transaction is dropped and the request starts over from a fresh read."""
    annotate(address=address, scorer_id=community.id)
    if guess is not None:
        proofs = scoring.check_proofs_ahead(address, stored=guess, guessed=True)
        try:
            return run_durable(lambda: _score(address, community, proofs, ends_transaction=True), lock_address=address)
        except scoring.GuessedStampsChanged:
            seen_stamps.forget(address)
            stamps = ceramic.scoring_stamps(address)
    proofs = scoring.check_proofs_ahead(address, stored=stamps)
    response = run_durable(lambda: _score(address, community, proofs, ends_transaction=True), lock_address=address)
    seen_stamps.remember(address, stamps)
    return response


# --- /v2 and /internal/score ------------------------------------------------------------------------------------


def _is_negative_id(scorer_ref: str) -> bool:
    """ "-<ASCII digits>" below zero; no int() call, which refuses "²" and numbers of over 4,300 digits."""
    digits = scorer_ref[1:]
    return scorer_ref.startswith("-") and digits.isascii() and digits.isdigit() and digits.strip("0") != ""


def v2_score(*, principal: ApiKeyPrincipal, scorer_ref: str, raw_address: str) -> dict[str, Any]:
    if _is_negative_id(scorer_ref):
        scorer_ref = str(settings.DEMO_API_SCORER_ID)
    address = _address_or_none(raw_address)
    guess = seen_stamps.guess(address) if address is not None else None
    community, stamps = communities.community_of_account(
        scorer_ref, principal.account_id, stamps_of=address if guess is None else None
    )
    if community is None:
        raise NotFound(NO_SCORER)
    if address is None:
        raise InvalidAddress()
    return _rescore(address, community, stamps, guess=guess)


def _address_or_none(raw_address: str) -> str | None:
    """The normalized address, or None when invalid: the caller reads the community (and the address's stamps)
    first and answers an unknown scorer's 404 before the address's 400, as the original does."""
    try:
        return normalize_address(raw_address)
    except InvalidAddress:
        return None


def internal_score(*, scorer_id: int, raw_address: str) -> dict[str, Any]:
    address = _address_or_none(raw_address)
    guess = seen_stamps.guess(address) if address is not None else None
    community, stamps = communities.community_and_stamps(scorer_id, address if guess is None else None)
    if community is None:
        raise NotFound(NO_COMMUNITY)
    if address is None:
        raise InvalidAddress()
    response = _rescore(address, community, stamps, guess=guess)
    if response["error"]:
        raise ScoreCalculationFailed()  # after commit: the error-state score stays saved
    return response


# --- /internal/embed ------------------------------------------------------------------------------------------------


def _embed_community(scorer_id: int, address: str | None) -> tuple[CommunityRow, list[CachedStamp]]:
    """The community, with the address's live stamps (read in the same statement)."""
    resolved = _demo_scorer_if_negative(scorer_id)
    community, stamps = communities.community_and_stamps(resolved, address) if resolved is not None else (None, [])
    if community is None:
        raise InvalidScorerId()
    return community, stamps


def embed_add_stamps(*, raw_address: str, scorer_id: int, credentials: list[Any]) -> dict[str, Any]:
    address = normalize_address(raw_address)
    rows = to_ceramic_rows([SubmittedStamp(subject_provider(c), c) for c in credentials])
    community, stamps = _embed_community(scorer_id, address)
    return _add_stamps_and_score(address, community, rows, source_app=SOURCE_APP_EMBED, stamps=stamps)


def embed_score(*, scorer_id: int, raw_address: str) -> dict[str, Any]:
    address = _address_or_none(raw_address)
    community, stamps = _embed_community(scorer_id, address)
    if address is None:
        raise InvalidAddress()
    return _write_then_score(address, community, write=None, stamps=stamps)


def _add_stamps_and_score(
    address: str, community: CommunityRow, rows: list[NewCeramicRow], *, source_app: int, stamps: list[CachedStamp]
) -> dict[str, Any]:
    """POST semantics: the submitted providers' live rows are replaced; rows are attributed to the scorer."""
    providers = [row.provider for row in rows]
    return _write_then_score(
        address,
        community,
        lambda: stamps_save(
            address=address,
            providers_to_replace=providers,
            rows=rows,
            source_app=source_app,
            source_scorer_id=community.id,
        ),
        replaced=providers,
        added=rows,
        stamps=stamps,
    )


def _write_then_score(
    address: str,
    community: CommunityRow,
    write: Callable[[], None] | None,
    *,
    replaced: list[str] | None = None,
    added: list[NewCeramicRow] | None = None,
    stamps: list[CachedStamp],
) -> dict[str, Any]:
    """Proofs of the stamps as they will be after the write are checked first, outside the transaction; then one
    transaction: the write (if any, under the address lock that scoring takes too), a rescore, the live stamps.
    `stamps`: the address's live stamps before the write, read with the community."""
    annotate(address=address, scorer_id=community.id)
    proofs = scoring.check_proofs_ahead(
        address,
        replaced_providers=frozenset(replaced or ()),
        added=[CachedStamp(row.provider, row.stamp) for row in added or ()],
        stored=stamps,
    )

    def work() -> dict[str, Any]:
        if write is not None:
            write()  # under the address lock, which scoring needs too
        score = _score(address, community, proofs)
        return {"success": True, "stamps": live_stamps(address), "score": score}

    return run_durable(work, lock_address=address)


# --- /ceramic-cache ---------------------------------------------------------------------------------------------------


def _ceramic_community(address: str, scorer_id: int | None = None) -> tuple[CommunityRow, list[CachedStamp]]:
    """The configured (or alternate) community, with the address's live stamps (read in the same statement)."""
    resolved = _ceramic_scorer_id(scorer_id)
    community, stamps = communities.community_and_stamps(resolved, address) if resolved is not None else (None, [])
    if community is None:
        raise NotFound(CERAMIC_COMMUNITY_MISSING)
    return community, stamps


def _ceramic_scorer_id(scorer_id: int | None) -> int | None:
    return scorer_id if scorer_id is not None else settings.CERAMIC_CACHE_SCORER_ID


def ceramic_add_stamps(*, address: str, items: list[SubmittedStamp]) -> dict[str, Any]:
    """POST /ceramic-cache/stamps/bulk: replace the submitted providers, then rescore."""
    rows = to_ceramic_rows(items)
    community, stamps = _ceramic_community(address)
    return _add_stamps_and_score(address, community, rows, source_app=SOURCE_APP_PASSPORT, stamps=stamps)


def ceramic_patch_stamps(*, address: str, items: list[SubmittedStamp]) -> dict[str, Any]:
    """PATCH: soft-delete every submitted provider (any type); re-add only the items that carry a stamp."""
    check_stamp_count(len(items))
    providers = _distinct_providers(items)
    rows = to_ceramic_rows([item for item in items if item.credential is not None])
    community, stamps = _ceramic_community(address)
    return _write_then_score(
        address,
        community,
        lambda: stamps_save(
            address=address,
            providers_to_replace=providers,
            rows=rows,
            source_app=None,
            source_scorer_id=None,
            v1_only=False,
        ),
        replaced=providers,
        added=rows,
        stamps=stamps,
    )


def ceramic_delete_stamps(*, address: str, providers: list[Any]) -> dict[str, Any]:
    check_stamp_count(len(providers))
    names = _distinct_providers([SubmittedStamp(provider, None) for provider in providers])

    def soft_delete() -> None:
        if ceramic.soft_delete(address, names, datetime.now(UTC), v1_only=False) == 0:
            raise NotFound(NOTHING_TO_DELETE)

    community, stamps = _ceramic_community(address)
    return _write_then_score(address, community, soft_delete, replaced=names, stamps=stamps)


def _distinct_providers(items: list[SubmittedStamp]) -> list[str]:
    for index, item in enumerate(items):
        if not isinstance(item.provider, str) or not item.provider:
            raise BadRequest(f"Stamp {index}: missing provider.")
    return list(dict.fromkeys(item.provider for item in items))


def ceramic_score(*, address: str, alternate_scorer_id: int | None, use_stored: bool) -> dict[str, Any]:
    """GET returns a stored, unexpired score as it is (with points); otherwise, and for POST, it rescores. The
    stored-score read needs no scorer setup: the community is read with it only when scoring follows."""
    if use_stored:
        resolved = _ceramic_scorer_id(alternate_scorer_id)
        flags = keys.community_flags(resolved) if resolved is not None else None
        if flags is None:
            raise NotFound(CERAMIC_COMMUNITY_MISSING)
        annotate(address=address, scorer_id=flags.id)
        stored = scores.stored_score_get(address, flags.id)
        if stored is not None and not (stored.expiration_date and stored.expiration_date < datetime.now(UTC)):
            points, possible = None, None
            if settings.HUMAN_POINTS_ENABLED and flags.human_points_program:
                points, possible = scoring.points_for(address)
            return score_response(address, stored, points_data=points, possible_points_data=possible)
    community, stamps = _ceramic_community(address, alternate_scorer_id)
    return _rescore(address, community, stamps)


def ceramic_stamps(*, raw_address: str) -> dict[str, Any]:
    """GET /ceramic-cache/stamp: read-only (the original's score-if-missing side effect is not kept)."""
    return {"success": True, "stamps": live_stamps(raw_address.lower())}


# --- weights --------------------------------------------------------------------------------------------------------

_weights_cache: TtlCache[int, dict[str, Any]] = TtlCache(max_entries=10_000)


def scorer_weights(community_id: int | None) -> dict[str, Any]:
    """The community's stored scorer weights, cached per worker for WEIGHTS_CACHE_SECONDS (the original: 60 s)."""
    resolved = community_id if community_id is not None else settings.CERAMIC_CACHE_SCORER_ID
    bound = settings.WEIGHTS_CACHE_SECONDS
    if resolved is not None and (cached := _weights_cache.get(resolved, bound)) is not None:
        return cached
    read_at = _weights_cache.clock()
    weights = keys.scorer_weights_of_community(resolved) if resolved is not None else None
    if weights is None:
        raise ScoreCalculationFailed(
            f"Unable to retrieve configured scorer! settings.CERAMIC_CACHE_SCORER_ID={settings.CERAMIC_CACHE_SCORER_ID}"
        )
    _weights_cache.put(resolved, weights, read_at, bound)
    return weights
