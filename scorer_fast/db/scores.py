"""Passports, scores and their registry stamps (registry_passport, registry_score, registry_stamp), and the
address lock that serializes the writers of one address."""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from scorer_fast.db import ceramic, sql
from scorer_fast.db.sql import Statement
from scorer_fast.domain.computation import ScoreFields
from scorer_fast.domain.credentials import CachedStamp
from scorer_fast.domain.dedup import Link
from scorer_fast.errors import DatabaseBusy

_UPSERT_ATTEMPTS = 3


# Serializes the writers of one address until commit (transaction-scoped: safe behind a transaction pooler).
# Its parameter is `lock_key(address)`.
ADDRESS_LOCK = "pg_advisory_xact_lock(hashtextextended(%s, 0))"
# The same lock without waiting: true when taken (a durable transaction's opening statement must not wait).
ADDRESS_LOCK_IF_FREE = "pg_try_advisory_xact_lock(hashtextextended(%s, 0))"


def lock_key(address: str) -> str:
    return "scorer_fast:address:" + address


def address_lock(address: str) -> None:
    sql.execute(f"SELECT {ADDRESS_LOCK}", [lock_key(address)])


# --- what scoring reads under the lock -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringSnapshot:
    """Everything a scoring run reads under the address lock, from one statement."""

    passport_id: int
    score_id: int
    stamps: list[CachedStamp]  # the address's live stamps (ceramic.SCORING_STAMPS)
    stored_stamps: "StoredStamps"  # registry_stamp of the passport
    stored_versions: list[str]  # their row versions, to see at write time whether another writer changed them
    links: dict[str, Link]  # registry_hashscorerlink of every nullifier the live stamps carry, in this community
    human_key_providers: set[str]  # registry_humanpoints HKY providers (human points reads only)
    qualified_communities: int  # registry_humanpointscommunityqualifiedusers rows of the address, this one included
    # `stamps` are the `expected` stamps, confirmed under the lock to be the live rows still (same versions)
    stamps_as_expected: bool = False
    qualified_here: bool = False  # this community's registry_humanpointscommunityqualifiedusers row exists


@dataclass(frozen=True)
class StoredStamps:
    """registry_stamp of the passport as the snapshot read it: its (provider, credential text) pairs by id, or, from
    the checked read, their number and a digest of those pairs only (the texts, ~2 kB each, stay in the database),
    or their number only when the read compared row versions and found them changed (then nothing is known)."""

    count: int
    pairs: list[tuple[str, str]] | None = None
    digest: str | None = None


@dataclass(frozen=True)
class KnownStoredStamps:
    """What registry_stamp rows of these versions (`id.xmin`, by id) hold: learnt by a read under the address lock.
    A row version never changes its content (an UPDATE makes a new xmin, an INSERT a new id; ids are not reused),
    so the checked read may send the versions only and take the digest of their (provider, text) pairs from here
    while they match: a digest, not the texts (~20 kB per address, for up to 128 addresses per worker)."""

    versions: list[str]
    digest: str


def stamps_digest(stamps: list[CachedStamp]) -> str | None:
    """What the checked read's `stored_digest` is for registry_stamp rows holding exactly these stamps, in order
    (None when a stamp has no stored text, or for none)."""
    if not stamps or any(stamp.text is None for stamp in stamps):
        return None
    return pairs_digest([(stamp.provider, stamp.text or "") for stamp in stamps])


def pairs_digest(pairs: list[tuple[str, str]]) -> str:
    """SHA-256 of (provider, credential text) pairs, as the checked read computes it in the database."""
    joined = "\x1e".join(f"{provider}\x1f{text}" for provider, text in pairs)
    return hashlib.sha256(joined.encode()).hexdigest()


@dataclass(frozen=True)
class _SnapshotRecord:
    passport_id: int
    score_id: int | None
    stamps: list[list[str]] | None
    stamp_versions: list[str] | None
    stored_stamps: list[list[str]] | None
    stored_digest: str | None
    stored_versions: list[str]
    link_hashes: list[str] | None
    link_addresses: list[str] | None
    link_expires: list[datetime] | None
    human_key_providers: list[str] | None
    qualified_count: int | None
    qualified_here: bool | None


# The passport upsert and the score get-or-create as data-modifying CTEs; then the reads. The statement starts
# after the lock was granted, so its snapshot includes whatever the previous holder of the lock committed. The
# inserts are only tried when the row is missing (an INSERT that conflicts costs more than the lookup).
# `%(address)s::text`: with server-side binding (the prepared-statement opt-in) PostgreSQL types the one `$n`
# of every `%(address)s` itself, and an untyped one in the INSERT's SELECT list clashes with `address = $n`
# (varchar): "inconsistent types deduced" (tests/test_prepared_optin.py). A no-op with client-side binding.
_UPSERTS = """
WITH p_ins AS (
    INSERT INTO registry_passport (address, community_id) SELECT %(address)s::text, %(community)s
    WHERE NOT EXISTS (
        SELECT FROM registry_passport WHERE address = %(address)s AND community_id = %(community)s
    )
    ON CONFLICT (address, community_id) DO NOTHING RETURNING id
),
p AS (
    SELECT id FROM p_ins
    UNION ALL SELECT id FROM registry_passport WHERE address = %(address)s AND community_id = %(community)s
    LIMIT 1
),
s_ins AS (
    INSERT INTO registry_score (passport_id, status) SELECT id, 'PROCESSING' FROM p
    WHERE NOT EXISTS (SELECT FROM registry_score s WHERE s.passport_id = p.id)
    ON CONFLICT (passport_id) DO NOTHING RETURNING id
)"""
_SCORE_ID = "COALESCE((SELECT id FROM s_ins), (SELECT s.id FROM registry_score s WHERE s.passport_id = p.id))"
# A row version: the id and the xmin of the row (the transaction that wrote this version of it).
_STORED_VERSIONS = (
    "ARRAY(SELECT r.id::text || '.' || r.xmin::text FROM registry_stamp r WHERE r.passport_id = p.id ORDER BY r.id)"
    " AS stored_versions"
)
_STORED_STAMPS = f"""
       ARRAY(SELECT ARRAY[r.provider, r.credential::text] FROM registry_stamp r WHERE r.passport_id = p.id
             ORDER BY r.id) AS stored_stamps, NULL::text AS stored_digest,
       {_STORED_VERSIONS}"""
# The checked read's registry stamps: a digest of the rows' (provider, credential text) pairs, as `stamps_digest`
# computes it for the kept stamps (chr(31) and chr(30) are the separators), not the texts.
_STORED_DIGEST = f"""
       NULL::text[] AS stored_stamps,
       (SELECT encode(sha256(convert_to(string_agg(r.provider || chr(31) || r.credential::text, chr(30) ORDER BY r.id),
                                        'UTF8')), 'hex')
        FROM registry_stamp r WHERE r.passport_id = p.id) AS stored_digest,
       {_STORED_VERSIONS}"""
# The checked read once the worker knows what the rows' versions hold (KnownStoredStamps): the versions only.
_STORED_VERSIONS_ONLY = f"""
       NULL::text[] AS stored_stamps, NULL::text AS stored_digest,
       {_STORED_VERSIONS}"""
# `hashes` is a superset of the nullifiers scoring looks up (`hash` or `nullifiers` strings of every live stamp).
_SNAPSHOT = """{upserts},
st AS ({stamps}),
hashes AS (
    SELECT DISTINCT e.value #>> '{{}}' AS hash
    FROM st, LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(st.subject) <> 'object' THEN '[]'::jsonb
             WHEN st.subject ? 'hash' THEN jsonb_build_array(st.subject -> 'hash')
             WHEN jsonb_typeof(st.subject -> 'nullifiers') = 'array' THEN st.subject -> 'nullifiers'
             ELSE '[]'::jsonb END
    ) e
    WHERE jsonb_typeof(e.value) = 'string'
)
SELECT p.id AS passport_id, {score_id} AS score_id,
       ARRAY(SELECT ARRAY[st.provider, st.stamp, st.version] FROM st ORDER BY st.provider) AS stamps,
       NULL::text[] AS stamp_versions,{stored_stamps},
       links.link_hashes, links.link_addresses, links.link_expires,
       {points}
FROM p
LEFT JOIN LATERAL (
    SELECT array_agg(l.hash ORDER BY l.hash) AS link_hashes,
           array_agg(l.address ORDER BY l.hash) AS link_addresses,
           array_agg(l.expires_at ORDER BY l.hash) AS link_expires
    FROM registry_hashscorerlink l
    WHERE l.community_id = %(community)s AND l.hash IN (SELECT hash FROM hashes)
) links ON true
"""
# The same reads when the stamps read before the transaction are expected to hold and the passport and score rows
# exist (every score after the first): a plain SELECT, no upserts; only the live rows' versions (no stamp text); the
# links of the nullifiers of the expected stamps (`hashes`, computed by the caller). When a row is missing or the
# versions differ (another writer changed the stamps in between), the full statement runs instead.
_CHECKED_SNAPSHOT = """
SELECT p.id AS passport_id, s.id AS score_id, NULL::text[] AS stamps,
       {versions} AS stamp_versions,{stored_digest},
       links.link_hashes, links.link_addresses, links.link_expires,
       {points}
FROM registry_passport p
LEFT JOIN registry_score s ON s.passport_id = p.id
LEFT JOIN LATERAL (
    SELECT array_agg(l.hash ORDER BY l.hash) AS link_hashes,
           array_agg(l.address ORDER BY l.hash) AS link_addresses,
           array_agg(l.expires_at ORDER BY l.hash) AS link_expires
    FROM registry_hashscorerlink l
    WHERE l.community_id = %(community)s AND l.hash = ANY(%(hashes)s::text[])
) links ON true
WHERE p.address = %(address)s AND p.community_id = %(community)s
"""
_POINTS = """
       ARRAY(SELECT hp.provider FROM registry_humanpoints hp WHERE hp.address = %(address)s AND hp.action = 'HKY')
           AS human_key_providers,
       (SELECT COUNT(*) FROM registry_humanpointscommunityqualifiedusers q WHERE q.address = %(address)s)
           AS qualified_count,
       EXISTS(SELECT 1 FROM registry_humanpointscommunityqualifiedusers q
              WHERE q.address = %(address)s AND q.community_id = %(community)s) AS qualified_here
"""
_NO_POINTS = "NULL::text[] AS human_key_providers, NULL::bigint AS qualified_count, NULL::bool AS qualified_here"


def _statement(template: str, points: bool, stored_known: bool) -> str:
    return template.format(
        upserts=_UPSERTS,
        score_id=_SCORE_ID,
        stored_stamps=_STORED_STAMPS,
        stored_digest=_STORED_VERSIONS_ONLY if stored_known else _STORED_DIGEST,
        stamps=ceramic.SCORING_STAMPS,
        versions=ceramic.SCORING_STAMP_VERSIONS_ARRAY,
        points=_POINTS if points else _NO_POINTS,
    )


_STATEMENTS = {
    (template, points, stored_known): _statement(template, points, stored_known)
    for template in (_SNAPSHOT, _CHECKED_SNAPSHOT)
    for points in (False, True)
    for stored_known in ((False, True) if template is _CHECKED_SNAPSHOT else (False,))
}


def scoring_snapshot(
    address: str,
    community_id: int,
    *,
    with_points: bool,
    known: Mapping[str, CachedStamp] | None = None,
    expected: list[CachedStamp] | None = None,
    expected_only: bool = False,
    stored_known: KnownStoredStamps | None = None,
) -> ScoringSnapshot | None:
    """Upsert the passport and its score row, then read the stamps, the stored registry stamps, the hash links
    and (`with_points`) the human-points rows — one round trip, under the address lock. With `expected` (the
    address's stamps as read before the transaction, versions included), the statement checks that they are still
    the live rows instead of reading them again; only when another writer changed them is the full read sent, or,
    with `expected_only`, nothing more: None (the caller starts over, having written nothing, not even the upserts'
    sequence values). With `stored_known` as well, that read compares registry_stamp's row versions with it
    instead of reading a digest of the rows.

    When another transaction (the original service, say) inserts the passport or score row and commits while this
    statement waits on it, the insert does nothing and the statement's snapshot predates that commit, so no row
    comes back. Run again, the statement takes a new snapshot (READ COMMITTED) and finds the row.
    """
    params: dict[str, object] = {"address": address, "community": community_id}
    if expected is not None and all(stamp.version is not None for stamp in expected):
        params["hashes"] = sql.text_array(
            sorted({hash_ for stamp in expected for hash_ in _lookup_hashes(stamp.credential)})
        )
        statement = _STATEMENTS[(_CHECKED_SNAPSHOT, with_points, stored_known is not None)]
        record = sql.fetch_one(_SnapshotRecord, statement, params, only_reads=True)
        if (
            record is not None
            and record.score_id is not None
            and record.stamp_versions == [stamp.version for stamp in expected]
        ):
            return _snapshot(record, expected, as_expected=True, stored_known=stored_known)
    if expected_only:
        return None
    for _ in range(_UPSERT_ATTEMPTS):
        record = sql.fetch_one(_SnapshotRecord, _STATEMENTS[(_SNAPSHOT, with_points, False)], params)
        if record is not None and record.score_id is not None:
            return _snapshot(record, ceramic.cached_stamps(record.stamps or [], known))
    # Still losing to other writers: retryable, so 503 "busy" (not "database unavailable", nor a 500).
    raise DatabaseBusy()


def _lookup_hashes(credential: object) -> list[str]:
    """What the full statement's `hashes` reads from a stamp, in Python: `credentialSubject.hash` when present,
    else its `nullifiers` array; string values only."""
    subject = credential.get("credentialSubject") if isinstance(credential, dict) else None
    if not isinstance(subject, dict):
        return []
    if "hash" in subject:
        values = [subject["hash"]]
    else:
        nullifiers = subject.get("nullifiers")
        values = nullifiers if isinstance(nullifiers, list) else []
    return [value for value in values if isinstance(value, str)]


def _snapshot(
    record: _SnapshotRecord,
    stamps: list[CachedStamp],
    *,
    as_expected: bool = False,
    stored_known: KnownStoredStamps | None = None,
) -> ScoringSnapshot:
    assert record.score_id is not None
    pairs = None if record.stored_stamps is None else [(provider, text) for provider, text in record.stored_stamps]
    digest = record.stored_digest
    if pairs is None and digest is None and stored_known and stored_known.versions == record.stored_versions:
        digest = stored_known.digest
    links = {}
    if record.link_hashes:
        assert record.link_addresses is not None and record.link_expires is not None
        links = {
            hash_: Link(address, expires)
            for hash_, address, expires in zip(
                record.link_hashes, record.link_addresses, record.link_expires, strict=True
            )
        }
    qualified = (record.qualified_count or 0) + (0 if record.qualified_here else 1)
    return ScoringSnapshot(
        passport_id=record.passport_id,
        score_id=record.score_id,
        stamps=stamps,
        stored_stamps=StoredStamps(count=len(record.stored_versions), pairs=pairs, digest=digest),
        stored_versions=list(record.stored_versions),
        links=links,
        human_key_providers=set(record.human_key_providers or ()),
        qualified_communities=qualified,
        stamps_as_expected=as_expected,
        qualified_here=bool(record.qualified_here),
    )


# --- writes ----------------------------------------------------------------------------------------------------


def score_update(score_id: int, fields: ScoreFields) -> Statement:
    return Statement(
        """
        UPDATE registry_score SET score = %s, last_score_timestamp = %s, status = %s, error = %s,
               evidence = %s::jsonb, stamp_scores = %s::jsonb, stamps = %s::jsonb, expiration_date = %s
        WHERE id = %s
        """,
        [
            fields.score,
            fields.last_score_timestamp,
            fields.status,
            fields.error,
            sql.jsonb(fields.evidence),
            sql.jsonb(fields.stamp_scores),
            sql.jsonb(fields.stamps),
            fields.expiration_date,
            score_id,
        ],
    )


def stamps_unchanged(stored: StoredStamps, kept: list[CachedStamp]) -> bool:
    """registry_stamp already holds exactly `kept`: compared on jsonb's text first (no parsing); only when the
    texts differ are the values compared (two texts of one value, such as 1.0 and 1.00, are the same stamp). From
    a digest only the texts can be compared: a different text of the same value is then rewritten, as the original
    rewrites registry_stamp on every scoring."""
    if stored.count != len(kept):
        return False
    if not kept:
        return True
    if stored.pairs is None:
        return stored.digest is not None and stored.digest == stamps_digest(kept)
    if all(
        provider == stamp.provider and text == stamp.text
        for (provider, text), stamp in zip(stored.pairs, kept, strict=True)
    ):
        return True
    return [(provider, sql.json_value(text)) for provider, text in stored.pairs] == [
        (stamp.provider, stamp.credential) for stamp in kept
    ]


def stamps_replaced_since(passport_id: int, snapshot_versions: list[str]) -> Statement:
    """A probe (a row means yes): registry_stamp of the passport is no longer the row versions the snapshot read,
    because another writer (the original takes none of our locks) deleted, added or changed rows since."""
    return Statement(
        "SELECT 1 WHERE ARRAY(SELECT id::text || '.' || xmin::text FROM registry_stamp WHERE passport_id = %s "
        "ORDER BY id) <> %s::text[]",
        [passport_id, sql.text_array(snapshot_versions)],
    )


def known_stored_stamps(snapshot: ScoringSnapshot) -> KnownStoredStamps | None:
    """What registry_stamp holds, by the snapshot that found it holding the kept stamps (so scoring left it alone);
    None when only its row count is known."""
    stored = snapshot.stored_stamps
    if stored.digest is not None:
        digest = stored.digest
    elif stored.pairs is not None:
        digest = pairs_digest(stored.pairs)
    else:
        return None
    return KnownStoredStamps(versions=list(snapshot.stored_versions), digest=digest)


def stamps_replace(passport_id: int, kept: list[CachedStamp]) -> list[Statement]:
    """registry_stamp holds exactly the kept stamps of the latest scoring: the rows go, the kept ones come in (one
    statement's two halves do not see each other's rows, so the new rows are never deleted)."""
    statements = [Statement("DELETE FROM registry_stamp WHERE passport_id = %s", [passport_id])]
    if kept:
        values = ", ".join(["(%s, %s, %s::jsonb)"] * len(kept))
        params: list[Any] = []
        for stamp in kept:
            params += [passport_id, stamp.provider, sql.jsonb(stamp.credential)]
        statements.append(
            Statement(f"INSERT INTO registry_stamp (passport_id, provider, credential) VALUES {values}", params)
        )
    return statements


def stored_score_get(address: str, community_id: int) -> ScoreFields | None:
    """The address's stored score in a community; its jsonb columns parsed as the original did."""
    row = sql.fetch_one(
        ScoreFields,
        """
        SELECT s.score, s.status, s.last_score_timestamp, s.error, s.evidence, s.stamp_scores, s.stamps,
               s.expiration_date
        FROM registry_score s JOIN registry_passport p ON p.id = s.passport_id
        WHERE p.address = %s AND p.community_id = %s
        """,
        [address, community_id],
    )
    if row is None:
        return None
    return replace(
        row,
        evidence=sql.json_value(row.evidence),
        stamp_scores=sql.json_value(row.stamp_scores),
        stamps=sql.json_value(row.stamps),
    )
