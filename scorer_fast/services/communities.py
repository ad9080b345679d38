"""The community a request scores for, with its scorer setup (type, weights, threshold, customization overrides):
reused per worker for SCORER_SETUP_CACHE_SECONDS, so a change in the admin takes effect within that bound
(docs/decisions.md). The address's live stamps are never cached: they come with the community's statement on a
miss, and alone (one small statement) on a hit. An unknown community is not remembered: it is looked up again."""

from collections.abc import Callable, Hashable

from django.conf import settings

from scorer_fast.caching import TtlCache
from scorer_fast.db import ceramic, keys
from scorer_fast.db.keys import CommunityRow
from scorer_fast.domain.credentials import CachedStamp

# By ("account", account id, scorer reference) for the partner routes, by ("id", community id) for the others.
_setups: TtlCache[Hashable, CommunityRow] = TtlCache(max_entries=10_000)


def community_of_account(
    scorer_ref: str, account_id: int, *, stamps_of: str | None
) -> tuple[CommunityRow | None, list[CachedStamp]]:
    """keys.community_of_account, the setup from the cache when it is fresh enough."""
    return _with_setup(
        ("account", account_id, scorer_ref),
        stamps_of,
        lambda: keys.community_of_account(scorer_ref, account_id, stamps_of=stamps_of),
    )


def community_and_stamps(community_id: int, stamps_of: str | None) -> tuple[CommunityRow | None, list[CachedStamp]]:
    """keys.community_and_stamps, the setup from the cache when it is fresh enough."""
    return _with_setup(("id", community_id), stamps_of, lambda: keys.community_and_stamps(community_id, stamps_of))


def _with_setup(
    key: Hashable, stamps_of: str | None, read: Callable[[], tuple[CommunityRow | None, list[CachedStamp]]]
) -> tuple[CommunityRow | None, list[CachedStamp]]:
    bound = settings.SCORER_SETUP_CACHE_SECONDS
    if (community := _setups.get(key, bound)) is not None:
        return community, ceramic.scoring_stamps(stamps_of) if stamps_of is not None else []
    read_at = _setups.clock()
    community, stamps = read()
    if community is not None:
        _setups.put(key, community, read_at, bound)
    return community, stamps


def forget_all() -> None:
    """Tests: start from an empty cache."""
    _setups.clear()
