"""The scoring pipeline, one synchronous code path. Callers own the transaction: every function here runs
inside the request's `transaction.atomic`, so a request's writes land together or not at all."""

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction

from scorer_fast.db import events, hash_links, scores, sql
from scorer_fast.db.keys import CommunityRow
from scorer_fast.db.scores import ScoringSnapshot
from scorer_fast.db.sql import Statement
from scorer_fast.domain import human_points
from scorer_fast.domain.addresses import did_for
from scorer_fast.domain.computation import ScoreFields, ScorerConfig, compute_score
from scorer_fast.domain.credentials import CachedStamp, kept_expiration, select_valid_stamps
from scorer_fast.domain.dedup import DedupPlan, Link, plan_lifo, stamp_nullifiers
from scorer_fast.domain.formats import score_update_event_json
from scorer_fast.domain.proofs import ProofVerifier, RequestProofs
from scorer_fast.errors import ScoringFailure
from scorer_fast.observability import annotate, timed_step
from scorer_fast.services import seen_stamps

logger = logging.getLogger(__name__)

DEDUP_ATTEMPTS = 5
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock


@cache
def proof_verifier() -> ProofVerifier:
    return ProofVerifier(settings.VERIFIED_PROOF_CACHE_SIZE)


def check_proofs_ahead(
    address: str,
    *,
    stored: Sequence[CachedStamp],
    replaced_providers: Collection[str] = (),
    added: Sequence[CachedStamp] = (),
    guessed: bool = False,
) -> RequestProofs:
    """Verify, before the transaction, the proofs scoring will need: the address's stamps as they will be after
    this request's write. didkit (up to 100 proofs) then never runs while a pooled connection or the address lock
    is held; the check under the lock is answered from this request's memory and the verdict cache, and only a
    stamp another writer changed in between reaches didkit there. `stored`: the address's live stamps, read with
    the community (`keys.community_of_account` / `keys.community_and_stamps`), or `guessed`: the stamps the worker
    last read (scorer_fast/services/seen_stamps.py), which scoring refuses to use unless the lock's statement finds
    them unchanged (GuessedStampsChanged)."""
    proofs = RequestProofs(proof_verifier())
    proofs.guessed = guessed
    proofs.read = {stamp.text: stamp for stamp in stored if stamp.text is not None}
    if not replaced_providers and not added:
        proofs.unchanged_stamps = list(stored)
    stamps = [stamp for stamp in stored if stamp.provider not in replaced_providers]
    with timed_step("verify_credentials"):
        valid = valid_stamps(address, [*stamps, *added], now=datetime.now(UTC), proofs=proofs)
    if proofs.unchanged_stamps is not None:
        proofs.unchanged_valid = valid
    return proofs


def valid_stamps(
    address: str, stamps: list[CachedStamp], *, now: datetime, proofs: RequestProofs, provider_binding: bool = True
) -> list[CachedStamp]:
    return select_valid_stamps(
        stamps,
        did=did_for(address),
        trusted_issuers=frozenset(settings.TRUSTED_IAM_ISSUERS),
        now=now,
        verify_proofs=proofs.verify_stamps,
        provider_binding=provider_binding,
    )


def score_address(
    *, address: str, community: CommunityRow, proofs: RequestProofs, ends_transaction: bool = False
) -> ScoreFields:
    """Score a validated, lower-case address for a community and persist the result. The caller holds the
    address lock (`run_durable(…, lock_address=address)`); `proofs` comes from `check_proofs_ahead`, called before
    the transaction. Under the lock: one statement reads, the hash-link writes (only when links change) and one
    statement writes; with `ends_transaction` (the caller sends nothing more in the transaction) the COMMIT
    travels with that write."""
    now = datetime.now(UTC)
    snapshot = scores.scoring_snapshot(
        address,
        community.id,
        with_points=_may_earn_human_points(community, now),
        known=proofs.read,
        expected=proofs.unchanged_stamps,
        expected_only=proofs.guessed,
        stored_known=seen_stamps.stored(address, community.id),
    )
    if snapshot is None:
        raise GuessedStampsChanged()  # before any write: the transaction is rolled back, the request starts over
    annotate(stamp_count=len(snapshot.stamps))
    writes = _Writes()
    try:
        # No savepoint needed: a ScoringFailure comes before the pipeline's first write, or after the LIFO
        # savepoints have rolled back their own attempts, so nothing partial is left to undo.
        fields = _run_pipeline(
            address=address, community=community, snapshot=snapshot, now=now, proofs=proofs, writes=writes
        )
    except ScoringFailure as failure:
        logger.warning("scoring failed: %s", failure, extra={"community_id": community.id})
        fields = ScoreFields.failed(str(failure))
    writes.statements.append(scores.score_update(snapshot.score_id, fields))
    if fields.status == "DONE":
        event = score_update_event_json(score_id=snapshot.score_id, passport_id=snapshot.passport_id, fields=fields)
        writes.events.append(("SCU", event))
    writes.statements += events.events_insert(address, community.id, writes.events, now)
    try:
        sql.execute_together(writes.statements, unless=writes.stamps_probe, commit=ends_transaction)
    except sql.ProbeFound:
        # Another writer replaced registry_stamp after our snapshot: ours is the latest scoring, so its rows win.
        # The write failed whole; the transaction runs again (run_durable), reads their rows and rewrites them.
        seen_stamps.forget_stored(address, community.id)
        raise
    _remember_stored_stamps(address, community.id, snapshot, writes)
    return fields


class GuessedStampsChanged(Exception):
    """The live stamps are not the guessed ones (another writer changed them since this worker read them)."""


@dataclass
class _Writes:
    """What a scoring run writes after scoring, sent as one statement: `events` go in as one multi-row INSERT,
    so their ids keep the order they were added in (LDP before SCU)."""

    statements: list[Statement] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    # registry_stamp looked unchanged: the write fails if another writer changed it meanwhile
    stamps_probe: Statement | None = None


def _remember_stored_stamps(address: str, community_id: int, snapshot: ScoringSnapshot, writes: _Writes) -> None:
    """When registry_stamp was left alone, what its row versions hold is known (the next checked read sends the
    versions only); rows this request wrote have versions it does not know. True whether or not this transaction
    commits: the rows left alone are other transactions' committed rows."""
    known = None
    if writes.stamps_probe is not None:
        known = scores.known_stored_stamps(snapshot)
    if known is None:
        seen_stamps.forget_stored(address, community_id)
    else:
        seen_stamps.remember_stored(address, community_id, known)


def _run_pipeline(
    *,
    address: str,
    community: CommunityRow,
    snapshot: ScoringSnapshot,
    now: datetime,
    proofs: RequestProofs,
    writes: _Writes,
) -> ScoreFields:
    """Adds to `writes` the rows to write with the score (they go in one statement after scoring)."""
    config = scoring_setup(community)
    valid = _valid_under_lock(address, snapshot, now=now, proofs=proofs)
    with timed_step("deduplicate"):
        plan = _deduplicate(address=address, community_id=community.id, stamps=valid, links=snapshot.links, now=now)
    with timed_step("write_score"):
        writes.events += [("LDP", document) for document in plan.events]
        if not scores.stamps_unchanged(snapshot.stored_stamps, plan.kept):
            writes.statements += scores.stamps_replace(snapshot.passport_id, plan.kept)
        else:
            writes.stamps_probe = scores.stamps_replaced_since(snapshot.passport_id, snapshot.stored_versions)
        fields = compute_score(kept=plan.kept, deduplicated=plan.deduplicated, config=config, now=now)
        if _may_earn_human_points(community, now) and fields.score == 1:
            writes.statements += _award_human_points(
                address=address, community_id=community.id, kept=plan.kept, snapshot=snapshot, now=now
            )
    return fields


def _valid_under_lock(
    address: str, snapshot: ScoringSnapshot, *, now: datetime, proofs: RequestProofs
) -> list[CachedStamp]:
    """The valid stamps of the snapshot. When they are the stamps checked before the transaction (same row versions),
    that check's answer holds but for expiry, the one test that depends on the time: only that is tested again."""
    if snapshot.stamps_as_expected and proofs.unchanged_valid is not None:
        return [stamp for stamp in proofs.unchanged_valid if kept_expiration(stamp.credential) >= now]
    return valid_stamps(address, snapshot.stamps, now=now, proofs=proofs)


def score_as_of(
    *,
    address: str,
    community: CommunityRow,
    stamps: list[CachedStamp],
    links: dict[str, Link],
    at: datetime,
    proofs: RequestProofs,
    provider_binding: bool = True,
) -> ScoreFields:
    """What a scoring run at `at` computes from these rows (the address's live stamps then, the hash links of their
    nullifiers then), writing nothing: the same steps as `_run_pipeline`, with the LIFO plan taken as is. The
    rollout audit (scorer_fast/services/audit.py) recomputes stored scores with it; `provider_binding=False`
    undoes decision 19 to see whether that alone explains a difference."""
    try:
        config = scoring_setup(community)
        plan = plan_dedup(
            address=address,
            community_id=community.id,
            stamps=valid_stamps(address, stamps, now=at, proofs=proofs, provider_binding=provider_binding),
            links=links,
            now=at,
        )
    except ScoringFailure as failure:
        return ScoreFields.failed(str(failure))
    return compute_score(kept=plan.kept, deduplicated=plan.deduplicated, config=config, now=at)


def scoring_setup(community: CommunityRow) -> ScorerConfig:
    """The community's scorer with its customization overrides, or a ScoringFailure (unknown scorer type, a rule
    other than LIFO). Read with the community, before the transaction (keys.community_get / community_of_account)."""
    config = _scorer_config(community)
    if community.rule != "LIFO":
        raise ScoringFailure("Invalid rule")
    return config


def _scorer_config(community: CommunityRow) -> ScorerConfig:
    config = community.config
    if config is None or config.scorer_type not in {"WEIGHTED", "WEIGHTED_BINARY"}:
        raise ScoringFailure("Unknown scorer type")
    if community.overrides:
        config = ScorerConfig(config.scorer_type, {**config.weights, **community.overrides}, config.threshold)
    return config


def _deduplicate(
    *, address: str, community_id: int, stamps: list[CachedStamp], links: dict[str, Link], now: datetime
) -> DedupPlan:
    """Plan against the links read with the stamps (`links`, a superset) and write the plan in a savepoint; a
    concurrent claim of the same nullifier (unique violation, lost conditional update, deadlock) rolls back to the
    savepoint, reads the links again and re-plans."""
    hashes = sorted(
        {h for stamp in stamps for h in stamp_nullifiers(stamp.credential, multi_nullifier=settings.FF_MULTI_NULLIFIER)}
    )
    for attempt in range(1, DEDUP_ATTEMPTS + 1):
        if attempt == 1:
            links = {hash_: links[hash_] for hash_ in hashes if hash_ in links}
        else:
            links = hash_links.get(hashes, community_id) if hashes else {}
        plan = plan_dedup(address=address, community_id=community_id, stamps=stamps, links=links, now=now)
        try:
            if plan.inserts or plan.updates:  # the savepoint costs two round trips: only when writing
                with transaction.atomic():
                    hash_links.insert(plan.inserts, community_id)
                    if not all(hash_links.update(change, community_id) for change in plan.updates):
                        raise _LostRace()
        except (IntegrityError, _LostRace) as exc:
            logger.info("hash link conflict, re-planning", extra={"attempt": attempt, "reason": type(exc).__name__})
            continue
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in _RETRYABLE_SQLSTATES:
                raise
            logger.info("hash link deadlock, re-planning", extra={"attempt": attempt})
            continue
        return plan
    raise ScoringFailure("Failed to save HashScorerLinks")


def plan_dedup(
    *, address: str, community_id: int, stamps: list[CachedStamp], links: dict[str, Link], now: datetime
) -> DedupPlan:
    """The LIFO plan for the valid `stamps` against `links` (a superset of their nullifiers' links is fine)."""
    return plan_lifo(
        address=address,
        community_id=community_id,
        stamps=stamps,
        links=links,
        now=now,
        multi_nullifier=settings.FF_MULTI_NULLIFIER,
    )


class _LostRace(Exception):
    """A conditional hash-link update matched no row: another writer changed the holder meanwhile."""


def _may_earn_human_points(community: CommunityRow, now: datetime) -> bool:
    """Whether a passing score earns human points here (then scoring reads the points rows with the stamps)."""
    return (
        settings.HUMAN_POINTS_WRITE_ENABLED
        and community.human_points_program
        and now.timestamp() >= settings.HUMAN_POINTS_START_TIMESTAMP
    )


def _award_human_points(
    *, address: str, community_id: int, kept: list[CachedStamp], snapshot: ScoringSnapshot, now: datetime
) -> list[Statement]:
    """The qualified-user row and the points rows of a passing score. The counts come from the snapshot read
    under the lock; `qualified_communities` already counts this community's row."""
    awards = human_points.stamp_awards(kept, providers_with_human_keys=snapshot.human_key_providers)
    if snapshot.qualified_communities >= human_points.SCORING_BONUS_MIN_COMMUNITIES:
        awards.append(human_points.PointsAward(human_points.SCORING_BONUS))
    if settings.HUMAN_POINTS_MTA_ENABLED:
        awards += _list_awards(address)
    qualify = [] if snapshot.qualified_here else [events.qualified_user_add(address, community_id)]
    return [*qualify, *events.human_points_insert(address, awards, now)]


def _list_awards(address: str) -> list[human_points.PointsAward]:
    names = [name for name, _action, _cap in human_points.LIST_ACTIONS]
    member_of = events.address_lists_of(address, names)
    awards = []
    for name, action, cap in human_points.LIST_ACTIONS:
        if name not in member_of or events.human_points_action_exists(address, action):
            continue
        if cap is not None and events.human_points_action_count(action) >= cap:
            continue
        awards.append(human_points.PointsAward(action))
    return awards


def points_for(address: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """points_data and possible_points_data for the ceramic-cache cached-score branch."""
    return human_points.points_summary(
        events.human_points_groups(address),
        is_eligible=events.qualified_communities_count(address) > 0,
        active_config=events.active_points_config(),
    )
