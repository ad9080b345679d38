"""registry_hashscorerlink: one claim per nullifier per community (LIFO de-duplication)."""

from typing import Any

from scorer_fast.db import sql
from scorer_fast.domain.dedup import Link, LinkChange


def get(hashes: list[str], community_id: int) -> dict[str, Link]:
    found = sql.rows(
        "SELECT hash, address, expires_at FROM registry_hashscorerlink "
        "WHERE hash = ANY(%s::text[]) AND community_id = %s",
        [hashes, community_id],
    )
    return {hash_: Link(address, expires_at) for hash_, address, expires_at in found}


def insert(changes: list[LinkChange], community_id: int) -> None:
    """A concurrent claim of the same (hash, community) raises IntegrityError: the caller re-plans."""
    if not changes:
        return
    values = ", ".join(["(%s, %s, %s, %s)"] * len(changes))
    params: list[Any] = []
    for change in changes:
        params += [change.hash, change.address, change.expires_at, community_id]
    sql.execute(
        f"INSERT INTO registry_hashscorerlink (hash, address, expires_at, community_id) VALUES {values}", params
    )


def update(change: LinkChange, community_id: int) -> bool:
    """Conditional on the exact holder and expiry we planned against; False means another writer (this service
    or the original) changed the link meanwhile and the caller re-plans."""
    assert change.expected is not None
    return (
        sql.execute(
            "UPDATE registry_hashscorerlink SET address = %s, expires_at = %s "
            "WHERE hash = %s AND community_id = %s AND address = %s AND expires_at = %s",
            [
                change.address,
                change.expires_at,
                change.hash,
                community_id,
                change.expected.address,
                change.expected.expires_at,
            ],
        )
        == 1
    )
