"""LIFO de-duplication planning: one claim per nullifier per community, the last valid claimant wins
only once the holder's claim has expired.

Pure: given the stamps and the hash links that exist now, it returns what to write. The service applies the
plan in a savepoint and re-plans on a conflict with a concurrent writer.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scorer_fast.domain.credentials import CachedStamp, kept_expiration


@dataclass(frozen=True)
class Link:
    address: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkChange:
    hash: str
    address: str
    expires_at: datetime
    # The exact row state the plan was made from (None for inserts): an update applies only if the link still
    # has this holder and this expiry, so a refresh and a takeover of one link can never both commit.
    expected: Link | None = None


@dataclass
class DedupPlan:
    kept: list[CachedStamp] = field(default_factory=list)
    # credentialSubject.provider → the deduplicated stamp's credential
    deduplicated: dict[str, dict[str, Any]] = field(default_factory=dict)
    inserts: list[LinkChange] = field(default_factory=list)
    updates: list[LinkChange] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def stamp_nullifiers(credential: dict[str, Any], *, multi_nullifier: bool) -> list[str]:
    """`hash` (legacy) or `nullifiers`; without FF_MULTI_NULLIFIER only the `v0` ones take part."""
    subject = credential.get("credentialSubject") or {}
    values = [subject["hash"]] if "hash" in subject else list(subject.get("nullifiers") or [])
    values = [value for value in values if isinstance(value, str)]
    if not multi_nullifier:
        values = [value for value in values if value.startswith("v0")]
    return values


def plan_lifo(
    *,
    address: str,
    community_id: int,
    stamps: list[CachedStamp],
    links: dict[str, Link],
    now: datetime,
    multi_nullifier: bool,
) -> DedupPlan:
    """Walk the stamps in order over a working copy of the links, then diff it against what exists.

    Where the original fails only because of a bug (decision 13), this does the sensible thing:
    - a deduplicated stamp back-fills only nullifiers nobody holds (never ones held by the address or expired);
    - two kept stamps sharing a nullifier make one link (the first claim), not a unique violation.
    """
    plan = DedupPlan()
    view = dict(links)
    for stamp in stamps:
        nullifiers = stamp_nullifiers(stamp.credential, multi_nullifier=multi_nullifier)
        expires_at = kept_expiration(stamp.credential)
        clashing = [h for h in nullifiers if h in view and view[h].address != address and view[h].expires_at > now]
        if not clashing:
            plan.kept.append(stamp)
            for nullifier in dict.fromkeys(nullifiers):
                current = view.get(nullifier)
                if current is None or current.address != address or current is links.get(nullifier):
                    view[nullifier] = Link(address, expires_at)
            continue
        subject = stamp.credential.get("credentialSubject") or {}
        plan.deduplicated[stamp.provider] = stamp.credential  # = credentialSubject.provider (decision 19)
        holder = view[clashing[0]]
        for nullifier in nullifiers:
            if nullifier not in view:
                view[nullifier] = Link(holder.address, holder.expires_at)
        plan.events.append(
            {"nullifiers": nullifiers, "provider": subject.get("provider"), "community_id": community_id}
        )

    for nullifier in sorted(view):  # sorted: concurrent writers lock the same rows in the same order
        planned, existing = view[nullifier], links.get(nullifier)
        if existing is None:
            plan.inserts.append(LinkChange(nullifier, planned.address, planned.expires_at))
        elif planned != existing:
            plan.updates.append(LinkChange(nullifier, planned.address, planned.expires_at, existing))
    return plan
