"""The rollout audit: recompute stored scores as scorer_fast would have computed them at their scoring time, with
the routes' own scoring steps (`scoring.score_as_of`), and list every difference, read-only.

Inputs at T (the row's `last_score_timestamp`): the ceramic-cache rows live then (created before T, not deleted
before T, not revoked), the community's scorer as it is now (nothing records its history), and the hash links as
they are now. A difference is `explained` only when the data shows a cause and the recomputation with that cause
undone reproduces the stored row exactly (a revoked or rewritten stamp row, a hash link another scoring rewrote
after T), or when the stored row is an error the original makes and scorer_fast deliberately does not
(docs/decisions.md). Everything else is unexplained.
"""

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from scorer_fast.db import audit as queries
from scorer_fast.db import keys, sql
from scorer_fast.db.audit import CeramicRow, Selection, StoredScore
from scorer_fast.db.keys import CommunityRow
from scorer_fast.domain.computation import ScoreFields
from scorer_fast.domain.credentials import CachedStamp, parse_expiration, subject_provider
from scorer_fast.domain.dedup import Link, stamp_nullifiers
from scorer_fast.domain.formats import stamp_entry
from scorer_fast.domain.proofs import RequestProofs
from scorer_fast.services import scoring

BATCH_SIZE = 200
FIRST_DIFFERENCES = 5
_SCORE_PLACES = Decimal("0.000000001")  # registry_score.score is numeric(18,9)
# Errors the original saves where scorer_fast scores (docs/decisions.md, "LIFO corners (decision 13)").
ORIGINAL_LIFO_ERRORS = frozenset({"Failed to save HashScorerLinks", "Unexpected number of HashScorerLinks"})


@dataclass(frozen=True)
class Difference:
    address: str
    community_id: int
    score_id: int
    fields: dict[str, dict[str, Any]]
    explained: bool
    cause: str | None
    kinds: tuple[str, ...] = ()  # the causes' short names, for the summary

    def report(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "community_id": self.community_id,
            "score_id": self.score_id,
            "fields": self.fields,
            "explained": self.explained,
            "cause": self.cause,
        }


@dataclass
class Totals:
    audited: int = 0
    equal: int = 0
    explained: int = 0
    unexplained: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    by_field: Counter[str] = field(default_factory=Counter)
    by_cause: Counter[str] = field(default_factory=Counter)
    first: list[Difference] = field(default_factory=list)

    def add(self, difference: Difference) -> None:
        if difference.explained:
            self.explained += 1
        else:
            self.unexplained += 1
        self.by_field.update({name.split(".", 1)[0] for name in difference.fields})
        self.by_cause.update(difference.kinds or ("unexplained",))
        if len(self.first) < FIRST_DIFFERENCES:
            self.first.append(difference)


@dataclass(frozen=True)
class _Skip:
    reason: str


_Outcome = Difference | _Skip | None  # None: equal


def run(
    selection: Selection,
    *,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    on_difference: Callable[[Difference], None] = lambda difference: None,
    on_progress: Callable[[int], None] = lambda rows: None,
) -> Totals:
    """Audit the selected stored scores in id order, one read-only transaction per batch. Memory stays constant:
    differences go to `on_difference` as they are found; `Totals` keeps counts and the first few."""
    totals = Totals()
    communities = _Communities()
    after, remaining = 0, limit
    while remaining is None or remaining > 0:
        size = batch_size if remaining is None else min(batch_size, remaining)
        with transaction.atomic():
            queries.begin_read_only()
            batch = queries.stored_scores(selection, after=after, batch=size)
            links = queries.links_of(_link_keys(batch))
            _verify_ahead(batch)
            outcomes = [_audit(stored, communities, links) for stored in batch]
        if not batch:
            break
        for outcome in outcomes:
            if isinstance(outcome, _Skip):
                totals.skipped[outcome.reason] += 1
                continue
            totals.audited += 1
            if outcome is None:
                totals.equal += 1
            else:
                totals.add(outcome)
                on_difference(outcome)
        after = batch[-1].score_id
        if remaining is not None:
            remaining -= len(batch)
        on_progress(len(batch))
    return totals


class _Communities:
    """The communities' scorer setups, read once per run (they are only known as they are now)."""

    def __init__(self) -> None:
        self._known: dict[int, CommunityRow | None] = {}

    def get(self, community_id: int) -> CommunityRow | None:
        if community_id not in self._known:
            self._known[community_id] = keys.community_get(community_id)
        return self._known[community_id]


def _link_keys(batch: list[StoredScore]) -> list[tuple[int, str]]:
    """(community, nullifier) of every stamp row of the batch, revoked ones too: their links are read at once."""
    keys = {
        (stored.community_id, h)
        for stored in batch
        if stored.community_id is not None
        for row in stored.rows
        for h in _nullifiers(sql.json_value(row.text))
    }
    return sorted(keys)


def _verify_ahead(batch: list[StoredScore]) -> None:
    """Fill the verified-proof cache with the batch's live stamps in one concurrent didkit run (about twice the
    rate of one row at a time); each row's own check then answers from the cache."""
    stamps = [_stamp(row) for stored in batch for row in stored.rows if not row.revoked]
    if stamps:
        scoring.proof_verifier().verify_stamps(stamps)


def _audit(stored: StoredScore, communities: _Communities, links: dict[int, dict[str, Link]]) -> _Outcome:
    if stored.address is None or stored.community_id is None:
        return _Skip("passport without address or community")
    if not stored.community_exists:
        return _Skip("community gone")
    community = communities.get(stored.community_id)
    if community is None:
        return _Skip("community gone")
    if stored.fields.status == "ERROR":
        return _audit_error(stored, community)
    if stored.fields.status != "DONE":
        return _Skip(f"status {stored.fields.status or 'NULL'} (no result stored)")
    if stored.fields.last_score_timestamp is None:
        return _Skip("DONE without a scoring time")
    # Only the links of this row's nullifiers: plan_lifo diffs every link it is given.
    community_links = links.get(community.id, {})
    hashes = {h for row in stored.rows for h in _nullifiers(sql.json_value(row.text))}
    row_links = {h: community_links[h] for h in hashes if h in community_links}
    return _Recomputation(stored, community, row_links).outcome()


# --- DONE rows: recompute at T, then look for a cause the data shows --------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    stamps: dict[str, CachedStamp]  # by provider column
    links: dict[str, Link]
    provider_binding: bool = True  # decision 19


@dataclass(frozen=True)
class _Alternative:
    """A way the inputs at T may have differed from what the rows show now, and the evidence for it."""

    kind: str
    detail: str
    apply: Callable[[_Inputs], _Inputs]


class _Recomputation:
    def __init__(self, stored: StoredScore, community: CommunityRow, links: dict[str, Link]) -> None:
        assert stored.address is not None and stored.fields.last_score_timestamp is not None
        self.stored, self.community, self.links = stored, community, links
        self.address, self.at = stored.address, stored.fields.last_score_timestamp
        self.proofs = RequestProofs(scoring.proof_verifier())
        self.expected = _comparable(stored.fields)

    def outcome(self) -> Difference | None:
        live = [row for row in self.stored.rows if not row.revoked]
        baseline = _Inputs(_by_provider(live), self.links)
        fields = self._differences(baseline)
        if not fields:
            return None
        applied = self._cause(baseline, fields)
        return Difference(
            address=self.address,
            community_id=self.community.id,
            score_id=self.stored.score_id,
            fields=fields,
            explained=applied is not None,
            cause=None if applied is None else "; ".join(alternative.detail for alternative in applied),
            kinds=() if applied is None else tuple(dict.fromkeys(alternative.kind for alternative in applied)),
        )

    def _differences(self, inputs: _Inputs) -> dict[str, dict[str, Any]]:
        recomputed = scoring.score_as_of(
            address=self.address,
            community=self.community,
            stamps=[inputs.stamps[provider] for provider in sorted(inputs.stamps)],
            links=inputs.links,
            at=self.at,
            proofs=self.proofs,
            provider_binding=inputs.provider_binding,
        )
        return _differences(self.expected, _comparable(recomputed))

    def _cause(self, baseline: _Inputs, fields: dict[str, dict[str, Any]]) -> list[_Alternative] | None:
        """The smallest set of shown alternatives found that reproduces the stored row: each alone, then all of
        them together (pruned to those needed)."""
        suspects = {name.split(".", 1)[1] for name in fields if name.startswith(("stamps.", "stamp_scores."))}
        alternatives = self._alternatives(baseline, suspects)
        for alternative in alternatives:
            if not self._differences(alternative.apply(baseline)):
                return [alternative]
        if len(alternatives) < 2 or self._differences(_applied(baseline, alternatives)):
            return None
        needed = list(alternatives)
        for alternative in alternatives:
            fewer = [other for other in needed if other is not alternative]
            if not self._differences(_applied(baseline, fewer)):
                needed = fewer
        return needed

    def _alternatives(self, baseline: _Inputs, suspects: set[str]) -> list[_Alternative]:
        found: list[_Alternative] = []
        for row in self.stored.rows:
            if row.provider not in suspects:
                continue
            if row.revoked and row.provider not in baseline.stamps:
                found.append(_revoked(row))
            elif not row.deleted and row.updated_at > self.at:
                found += self._rewritten(row)
        unbound = [
            stamp
            for stamp in baseline.stamps.values()
            if stamp.provider in suspects and subject_provider(stamp.credential) != stamp.provider
        ]
        if unbound:
            found.append(_unbound(unbound))
        candidates = [*baseline.stamps.values(), *(_stamp(row) for row in self.stored.rows if row.revoked)]
        for stamp in candidates:
            if stamp.provider in suspects:
                found += self._link_alternatives(stamp, baseline.links)
        return found

    def _rewritten(self, row: CeramicRow) -> list[_Alternative]:
        detail = (
            f"ceramic-cache row {row.id} ({row.provider}) was updated at {row.updated_at.isoformat()}, "
            "after this scoring"
        )
        kept_then = [
            text for provider, text in queries.registry_stamps(self.stored.passport_id) if provider == row.provider
        ]
        found = [
            _Alternative(
                "stamp changed after the scoring",
                detail + "; registry_stamp holds the credential scored then",
                _with_stamp(CachedStamp(row.provider, sql.json_value(text), text)),
            )
            for text in kept_then[:1]
            if text != row.text
        ]
        found.append(
            _Alternative("stamp changed after the scoring", detail + " (not live then)", _without(row.provider))
        )
        return found

    def _link_alternatives(self, stamp: CachedStamp, links: dict[str, Link]) -> list[_Alternative]:
        found = []
        for hash_ in _nullifiers(stamp.credential):
            link = links.get(hash_)
            if link is None or link.address == self.address:
                continue
            write = queries.link_written_after(
                community_id=self.community.id, hash_=hash_, holder=link.address, after=self.at
            )
            if write is None:
                continue
            detail = (
                f"the hash link of {hash_} ({stamp.provider}) is now held by {link.address}, who scored after this "
                f"scoring and kept its {write.provider} stamp carrying it (SCU event {write.event_id} at "
                f"{write.at.isoformat()})"
            )
            found += [
                _Alternative("hash link changed after the scoring", detail, _links_without(hash_)),
                _Alternative(
                    "hash link changed after the scoring",
                    detail,
                    _links_with(hash_, Link(link.address, self.at + timedelta(days=1))),
                ),
            ]
        return found


def _by_provider(rows: list[CeramicRow]) -> dict[str, CachedStamp]:
    """One row per provider (the rows come newest first per provider), as scoring reads the live rows."""
    stamps: dict[str, CachedStamp] = {}
    for row in rows:
        stamps.setdefault(row.provider, _stamp(row))
    return stamps


def _stamp(row: CeramicRow) -> CachedStamp:
    return CachedStamp(row.provider, sql.json_value(row.text), row.text)


def _nullifiers(credential: Any) -> list[str]:
    if not isinstance(credential, dict) or not isinstance(credential.get("credentialSubject"), dict):
        return []
    return stamp_nullifiers(credential, multi_nullifier=settings.FF_MULTI_NULLIFIER)


def _revoked(row: CeramicRow) -> _Alternative:
    return _Alternative(
        "stamp revoked after the scoring",
        f"ceramic-cache row {row.id} ({row.provider}) is revoked now; a revocation carries no time and the original "
        "never scores a revoked row, so it was revoked after this scoring",
        _with_stamp(_stamp(row)),
    )


def _unbound(stamps: list[CachedStamp]) -> _Alternative:
    names = ", ".join(f"{stamp.provider} (credential: {subject_provider(stamp.credential)})" for stamp in stamps)
    return _Alternative(
        "provider binding (decision 19)",
        f"the row's provider differs from its credential's: {names}; the original scores such a row under the "
        "row's provider, scorer_fast drops it (docs/decisions.md, decision 19)",
        lambda inputs: replace(inputs, provider_binding=False),
    )


def _with_stamp(stamp: CachedStamp) -> Callable[[_Inputs], _Inputs]:
    return lambda inputs: replace(inputs, stamps={**inputs.stamps, stamp.provider: stamp})


def _without(provider: str) -> Callable[[_Inputs], _Inputs]:
    return lambda inputs: replace(inputs, stamps={p: s for p, s in inputs.stamps.items() if p != provider})


def _links_without(hash_: str) -> Callable[[_Inputs], _Inputs]:
    return lambda inputs: replace(inputs, links={h: link for h, link in inputs.links.items() if h != hash_})


def _links_with(hash_: str, link: Link) -> Callable[[_Inputs], _Inputs]:
    return lambda inputs: replace(inputs, links={**inputs.links, hash_: link})


def _applied(inputs: _Inputs, alternatives: list[_Alternative]) -> _Inputs:
    for alternative in alternatives:
        inputs = alternative.apply(inputs)
    return inputs


# --- ERROR rows: the original clears last_score_timestamp, so only what does not depend on T is judged -----------


def _audit_error(stored: StoredScore, community: CommunityRow) -> _Outcome:
    assert stored.address is not None
    # Without stamps, only the scorer setup can fail (unknown scorer type, a rule other than LIFO).
    recomputed = scoring.score_as_of(
        address=stored.address,
        community=community,
        stamps=[],
        links={},
        at=datetime.now(UTC),
        proofs=RequestProofs(scoring.proof_verifier()),
    )
    if recomputed.status == "ERROR":
        fields = _differences(_comparable(stored.fields), _comparable(recomputed))
        return _difference(stored, fields, None) if fields else None
    fields = {
        "status": {"stored": stored.fields.status, "recomputed": "DONE"},
        "error": {"stored": stored.fields.error, "recomputed": None},
    }
    if stored.fields.error in ORIGINAL_LIFO_ERRORS:
        return _difference(
            stored,
            fields,
            (
                "original LIFO error (decision 13)",
                "the original ends some LIFO corners in this error; scorer_fast "
                "scores them (docs/decisions.md, LIFO corners)",
            ),
        )
    for row_id, provider, credential in queries.credentials_of(stored.address):
        if isinstance(credential, dict) and parse_expiration(credential) is None:
            return _difference(
                stored,
                fields,
                (
                    "original expirationDate error",
                    f"ceramic-cache row {row_id} ({provider}) has no valid "
                    "expirationDate: the original turns the whole score into an error, scorer_fast drops the stamp "
                    "(docs/decisions.md, Credentials)",
                ),
            )
    return _Skip("ERROR without a scoring time")


def _difference(stored: StoredScore, fields: dict[str, dict[str, Any]], cause: tuple[str, str] | None) -> Difference:
    assert stored.address is not None and stored.community_id is not None
    return Difference(
        address=stored.address,
        community_id=stored.community_id,
        score_id=stored.score_id,
        fields=fields,
        explained=cause is not None,
        cause=None if cause is None else cause[1],
        kinds=() if cause is None else (cause[0],),
    )


# --- comparison, in the formats the API and the stored JSON use ---------------------------------------------------


def _comparable(fields: ScoreFields) -> dict[str, Any]:
    return _flat(
        fields.status,
        fields.score,
        fields.error,
        fields.evidence,
        fields.stamp_scores,
        fields.stamps,
        fields.expiration_date,
    )


def _flat(
    status: Any, score: Any, error: Any, evidence: Any, stamp_scores: Any, stamps: Any, expiration: Any
) -> dict[str, Any]:
    """One value per compared name: `evidence.<key>`, `stamp_scores.<provider>`, `stamps.<provider>` (the API's
    entry shape: score, dedup, expiration_date), the score column with its 9 places, dates as isoformat."""
    flat: dict[str, Any] = {
        "status": status,
        "score": format(score.quantize(_SCORE_PLACES), "f") if isinstance(score, Decimal) else score,
        "error": error,
        "expiration_date": expiration.isoformat() if isinstance(expiration, datetime) else expiration,
    }
    for name, value, shape in (
        ("evidence", evidence, _same),
        ("stamp_scores", stamp_scores, _same),
        ("stamps", stamps, _entry),
    ):
        if isinstance(value, dict):
            flat.update({f"{name}.{key}": shape(item) for key, item in value.items()})
        elif value is not None:
            flat[name] = value
    return flat


def _same(value: Any) -> Any:
    return value


def _entry(value: Any) -> Any:
    return stamp_entry(value) if isinstance(value, dict) else value


def _differences(stored: dict[str, Any], recomputed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = dict.fromkeys(itertools.chain(stored, recomputed))
    return {
        name: {"stored": stored.get(name), "recomputed": recomputed.get(name)}
        for name in names
        if stored.get(name) != recomputed.get(name)
    }
