"""What a score's page says in words: the verdict, each stamp's own reason for counting or not, and a rescore's
result. Reads only (the rescore itself is scores.py's); every reason is decided from the rows the page shows."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.utils.html import format_html

from scorer_fast import models
from scorer_fast.admin.base import changelist_link, utc_date
from scorer_fast.domain.addresses import did_for
from scorer_fast.domain.credentials import credential_problems, parse_expiration, subject_provider
from scorer_fast.domain.dedup import stamp_nullifiers
from scorer_fast.services.scoring import proof_verifier


def plain_number(value: Any) -> str:
    """23.1, 20, 0.12345: five places at most, no trailing zeros (what a person reads; the API keeps its own)."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return "-"
    if not number.is_finite():
        return "-"
    return format(number.quantize(Decimal("0.00001")).normalize(), "f")


def raw_score(score: models.Score) -> str | None:
    raw = (score.evidence or {}).get("rawScore")
    return None if raw is None else plain_number(raw)


def passes(score: models.Score) -> bool:
    return score.score is not None and score.score == 1


def verdict(score: models.Score) -> str:
    """ "passes: 23.1 of 20" / "does not pass: 12.5, needs 20", or why there is no number."""
    if score.status == "ERROR":
        return f"not scored: the last scoring failed ({score.error or 'no error recorded'})"
    if score.status == "PROCESSING":
        return "not scored yet: a scoring is in progress"
    raw = raw_score(score)
    threshold = (score.evidence or {}).get("threshold")
    if raw is None or threshold is None:
        return "no score recorded yet"
    if passes(score):
        return f"passes: {raw} of {plain_number(threshold)}"
    return f"does not pass: {raw}, needs {plain_number(threshold)}"


def rescore_result(before: models.Score, after: models.Score) -> str:
    """ "score recalculated: 12.5 → 23.1, now passes"."""
    if after.status == "ERROR":
        return f"score recalculated, but the scoring failed: {after.error or 'no error recorded'}"
    was, now = passes(before), passes(after)
    change = {
        (False, True): "now passes",
        (True, True): "still passes",
        (True, False): "no longer passes",
        (False, False): "still does not pass",
    }[(was, now)]
    threshold = (after.evidence or {}).get("threshold")
    if not now and threshold is not None:
        change += f" (needs {plain_number(threshold)})"
    return f"score recalculated: {raw_score(before) or 'none'} → {raw_score(after) or 'none'}, {change}"


@dataclass(frozen=True)
class Holder:
    """The address that holds a de-duplicated stamp's nullifier in this community, and since when."""

    address: str
    since: datetime | None


@dataclass(frozen=True)
class StampLine:
    provider: str
    weight: str
    contributed: str
    expires: str
    reason: str


def stamp_lines(score: models.Score, weights: dict[str, Any]) -> list[StampLine]:
    """Every stamp the score lists or the address holds now, each with its own reason (a few queries)."""
    address, community_id = score.passport.address or "", score.passport.community_id
    entries: dict[str, dict[str, Any]] = score.stamps or {}
    live = {
        row.provider: row
        for row in models.CeramicCache.objects.filter(address=address, deleted_at__isnull=True).order_by("id")
    }
    revoked = set(
        models.Revocation.objects.filter(ceramic_cache_id__in=[row.pk for row in live.values()]).values_list(
            "ceramic_cache_id", flat=True
        )
    )
    deduplicated = [live[provider] for provider, entry in entries.items() if entry.get("dedup") and provider in live]
    holders = nullifier_holders(address, community_id, deduplicated)
    lines = []
    for provider in sorted(set(entries) | set(live)):
        entry, cached = entries.get(provider), live.get(provider)
        expiry = entry.get("expiration_date") if entry else _cached_expiry(cached)
        if entry is not None:
            reason = _listed_reason(provider, entry, cached, weights, holders.get(provider), community_id)
        else:
            assert cached is not None
            reason = _unlisted_reason(address, cached, score.last_score_timestamp, cached.pk in revoked)
        lines.append(
            StampLine(
                provider=provider,
                weight=plain_number(weights[provider]) if provider in weights else "no weight",
                contributed=plain_number(entry.get("score")) if entry else "-",
                expires=utc_date(expiry) if expiry else "-",
                reason=reason,
            )
        )
    return lines


def _cached_expiry(cached: models.CeramicCache | None) -> datetime | None:
    if cached is None:
        return None
    return cached.expiration_date or parse_expiration(cached.stamp if isinstance(cached.stamp, dict) else {})


def _listed_reason(
    provider: str,
    entry: dict[str, Any],
    cached: models.CeramicCache | None,
    weights: dict[str, Any],
    holder: Holder | None,
    community_id: int | None,
) -> str:
    """A stamp the last scoring kept: counted, de-duplicated, or without weight."""
    if entry.get("dedup"):
        if holder is None:
            return "de-duplicated: another address held its nullifier in this community (that claim has ended)"
        link = changelist_link("score", holder.address, q=holder.address, community=community_id)
        since = f" since {utc_date(holder.since)}" if holder.since else ""
        return format_html("de-duplicated: its nullifier is held by {}{}", link, since)
    if provider not in weights:
        return "not counted: no weight in this scorer"
    counted = f"counted: +{plain_number(entry.get('score'))}"
    expiry = _moment(entry.get("expiration_date"))
    if expiry is not None and expiry < datetime.now(UTC):
        counted += f" (expired since, on {utc_date(expiry)}: the next scoring drops it)"
    if cached is None:
        counted += " (since deleted by its holder: the next scoring drops it)"
    return counted


def _unlisted_reason(address: str, cached: models.CeramicCache, scored_at: datetime | None, revoked: bool) -> str:
    """A stamp the address holds that the last scoring did not keep: the first reason that applies."""
    added = max(filter(None, (cached.created_at, cached.updated_at)), default=None)
    if scored_at is None or (added is not None and added > scored_at):
        return "not counted: added after the last scoring (recalculate to count it)"
    expiry = _cached_expiry(cached)
    if expiry is None:
        return "not counted: it has no valid expiry date"
    if expiry < scored_at:
        return f"not counted: expired on {utc_date(expiry)}"
    if revoked:
        return "not counted: revoked"
    credential = cached.stamp if isinstance(cached.stamp, dict) else {}
    if credential.get("issuer") not in settings.TRUSTED_IAM_ISSUERS:
        return "not counted: issued by an issuer this service does not trust"
    if subject_provider(credential) != cached.provider:
        return "not counted: stored under another provider than its credential's"
    problems = credential_problems(credential, did_for(address))
    if problems:
        return f"not counted: invalid credential ({'; '.join(problems)})"
    if not proof_verifier().verify_many([credential])[0]:
        return "not counted: proof invalid"
    return "not counted at the last scoring, though valid now (recalculate to count it)"


def nullifier_holders(address: str, community_id: int | None, stamps: list[models.CeramicCache]) -> dict[str, Holder]:
    """provider → the other address holding one of its nullifiers in this community, with the issuance date of
    that address's own stamp (the database keeps no time of the claim itself). Two queries."""
    by_hash = {
        nullifier: stamp.provider
        for stamp in stamps
        for nullifier in stamp_nullifiers(stamp.stamp or {}, multi_nullifier=settings.FF_MULTI_NULLIFIER)
    }
    if not by_hash or community_id is None:
        return {}
    links = models.HashScorerLink.objects.filter(community_id=community_id, hash__in=list(by_hash)).exclude(
        address=address
    )
    claimed = {by_hash[link.hash]: link.address for link in links}
    issued = {
        (row.address, row.provider): row.issuance_date or _moment((row.stamp or {}).get("issuanceDate"))
        for row in models.CeramicCache.objects.filter(
            address__in=set(claimed.values()), provider__in=list(claimed), deleted_at__isnull=True
        )
    }
    return {provider: Holder(holder, issued.get((holder, provider))) for provider, holder in claimed.items()}


def _moment(raw: Any) -> datetime | None:
    """An ISO date-time with a zone (as credentials and score entries store them), else None."""
    return parse_expiration({"expirationDate": raw})
