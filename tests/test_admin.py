"""The support admin through Django's test client, logged in as staff holding the original's permissions (with and
without rescore_individual_score): pages, values, actions, secrets, query bounds and index use."""

import hashlib
import json
import os
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.staticfiles import finders
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from scorer_fast import models
from scorer_fast.admin.base import CappedCountPaginator, original_permission
from scorer_fast.services import use_cases
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import count_rows

pytestmark = pytest.mark.django_db

HOLDER = "0x" + "b" * 40  # holds the Github nullifier first
USER = "0x" + "a" * 40  # Ens + Google count, Github is de-duplicated (held by HOLDER)
WEIGHTS = {"Ens": 12, "Google": 10, "Github": 1}
SHARED = "v0:Github:shared-nullifier"
ADMIN = "/admin/scorer_fast"
LISTS = [
    "score",
    "passport",
    "stamp",
    "ceramiccache",
    "event",
    "hashscorerlink",
    "account",
    "accountapikey",
    "accountapikeyanalytics",
    "community",
    "scorer",
    "weightedscorer",
    "binaryweightedscorer",
    "humanpoints",
    "humanpointscommunityqualifiedusers",
    "humanpointsmultiplier",
    "humanpointsconfig",
    "revocation",
    "addresslist",
    "addresslistmember",
    "customization",
    "allowlist",
    "walletgroupcommunityclaim",
]


def grant(user: User, app_label: str, codename: str, model_name: str) -> None:
    """A permission as the original's database holds it (its own content type, e.g. registry | score)."""
    content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model_name)
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename=codename, defaults={"name": codename}
    )
    user.user_permissions.add(permission)


def support_user(*, rescore: bool) -> User:
    """Staff with the original's view permissions on every table (as group admin_read_only has them)."""
    user = User.objects.create_user(f"support-{rescore}", password="pw", is_staff=True)
    for model in apps.get_app_config("scorer_fast").get_models():
        app_label, codename = original_permission(model, "view").split(".")
        grant(user, app_label, codename, model._meta.model_name)
    if rescore:
        grant(user, "registry", "rescore_individual_score", "score")
    return user


@pytest.fixture
def viewer(client):
    client.force_login(support_user(rescore=False))
    return client


@pytest.fixture
def rescorer(client):
    client.force_login(support_user(rescore=True))
    return client


@pytest.fixture
def scored():
    """HOLDER claims the shared Github nullifier; USER holds Ens and Github (de-duplicated): raw score 12."""
    owner = factories.account()
    community = factories.community(owner=owner, weights=WEIGHTS, threshold="20")
    factories.cache_stamp(HOLDER, signed_stamp(HOLDER, "Github", nullifiers=[SHARED]))
    use_cases.internal_score(scorer_id=community.id, raw_address=HOLDER)
    factories.cache_stamp(USER, signed_stamp(USER, "Ens"))
    factories.cache_stamp(USER, signed_stamp(USER, "Github", nullifiers=[SHARED]))
    use_cases.internal_score(scorer_id=community.id, raw_address=USER)
    score = models.Score.objects.get(passport__address=USER)
    return community, score


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", html, re.S)]


# --- pages --------------------------------------------------------------------------------------------------------


def test_every_list_and_detail_page_answers_for_read_only_staff(viewer, scored):
    owner = scored[0].account
    factories.api_key(owner)
    index = page(viewer, "/admin/")
    assert "Communities (scorers)" in index and "Human points awards" in index and "Communitys" not in index
    assert "(existing tables)" not in index and "Hash scorer links" not in index
    for name in LISTS:
        html = page(viewer, f"{ADMIN}/{name}/")
        assert "object (" not in html, name  # every model has a __str__
        first = re.search(rf'href="{ADMIN}/{name}/([^/"]+)/change/', html)
        if first and name != "accountapikey":
            page(viewer, f"{ADMIN}/{name}/{first.group(1)}/change/")


def test_score_list_shows_address_community_raw_score_and_filters(viewer, scored):
    community, score = scored
    html = page(viewer, f"{ADMIN}/score/?q={USER.upper().replace('0X', '0x')}")
    row = cells(html)
    assert USER in row and str(community) in row and "12" in row
    assert "DONE" in row and HOLDER not in html
    assert "passport_id" not in html and "1.000000000" not in html
    assert HOLDER in page(viewer, f"{ADMIN}/score/?q={HOLDER[:10]}")  # prefix search
    assert USER in page(viewer, f"{ADMIN}/score/?community={community.id}")
    assert USER not in page(viewer, f"{ADMIN}/score/?community={community.id + 1000}")
    assert USER not in page(viewer, f"{ADMIN}/score/?passing=yes") and USER in page(
        viewer, f"{ADMIN}/score/?passing=no"
    )


COLUMNS = {
    "score": ["Address", "Community", "Raw score", "Passing", "Status", "Last scored", "Expires"],
    "passport": ["Address", "Community", "Requires calculation", "Score"],
    "stamp": ["ID", "Address", "Community", "Provider", "Expires"],
    "ceramiccache": [
        "ID",
        "Address",
        "Provider",
        "State",
        "Written by",
        "Issuance date",
        "Expiration date",
        "Updated at",
    ],
    "event": ["ID", "Action", "Address", "Community", "Created at"],
    "hashscorerlink": ["Hash", "Address", "Community", "Expires at"],
}


@pytest.mark.parametrize("name", list(COLUMNS))
def test_address_lists_show_their_columns_and_the_searched_address(viewer, scored, name):
    community = scored[0]
    html = page(viewer, f"{ADMIN}/{name}/?q={USER}")
    html = html[html.find('id="result_list"') :]
    headers = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r'<th scope="col".*?</th>', html, re.S)]
    assert [h for h in headers if h] == COLUMNS[name]
    row = cells(html[html.find("<tbody>") :])
    assert USER in row, name
    if "Community" in COLUMNS[name]:
        assert str(community) in row


def stamp_reasons(html: str) -> dict[str, list[str]]:
    """provider → its row of the score page's stamp table (weight, contributed, expires, why)."""
    table = html[html.find("each stamp and its reason") :]
    rows = re.findall(r"<tr>(.*?)</tr>", table[: table.find("</table>")], re.S)
    return {cells(row)[0]: cells(row)[1:] for row in rows if "<td>" in row}


def test_a_score_page_names_the_address_and_scorer_gives_a_verdict_and_each_stamps_own_reason(viewer, scored):
    community, score = scored
    factories.cache_stamp(USER, signed_stamp(USER, "Google", days_valid=-2))  # weighted, but expired
    factories.cache_stamp(USER, signed_stamp(USER, "Twitter"))  # valid, no weight in this scorer
    tampered = signed_stamp(USER, "Discord")
    tampered["credentialSubject"]["nullifiers"] = ["v0:Discord:not-what-was-signed"]
    factories.cache_stamp(USER, tampered)
    use_cases.internal_score(scorer_id=community.id, raw_address=USER)
    factories.cache_stamp(USER, signed_stamp(USER, "Linkedin"))  # after the last scoring
    models.HumanPoints.objects.create(
        address=USER, action="PMT", timestamp=datetime.now(UTC), tx_hash="0xtx", chain_id=10, provider="Ens"
    )
    holder_stamp = models.CeramicCache.objects.get(address=HOLDER, provider="Github")
    expired_on = datetime.fromisoformat(
        models.CeramicCache.objects.get(address=USER, provider="Google").stamp["expirationDate"]
    )

    html = page(viewer, f"{ADMIN}/score/{score.pk}/change/")

    title = re.search(r"<title>(.*?)</title>", html).group(1)
    assert f"Score of {USER} in {community}" in title and "score of passport" not in html
    assert f"<h1>Score of {USER} in {community}</h1>" in html
    assert "<h2>does not pass: 12, needs 20</h2>" in html
    reasons = stamp_reasons(html)
    assert reasons["Ens"] == ["12", "12", reasons["Ens"][2], "counted: +12"]
    assert reasons["Google"][3] == f"not counted: expired on {expired_on:%Y-%m-%d %H:%M}"
    assert reasons["Twitter"][0] == "no weight" and reasons["Twitter"][3] == "not counted: no weight in this scorer"
    assert reasons["Discord"][3] == "not counted: proof invalid"
    assert reasons["Linkedin"][3] == "not counted: added after the last scoring (recalculate to count it)"
    since = datetime.fromisoformat(holder_stamp.stamp["issuanceDate"])
    assert reasons["Github"][3] == f"de-duplicated: its nullifier is held by {HOLDER} since {since:%Y-%m-%d %H:%M}"
    assert f'href="{ADMIN}/score/?q={HOLDER}&amp;community={community.id}">{HOLDER}</a>' in html  # linked
    text = cells(html)
    assert "score updated" in text and "stamp de-duplicated" in text and "SCU" not in text  # the events, in words
    assert "PMT" in text and "0xtx" in text  # its human points
    assert "proofValue" not in html or "(hidden)" in html


def test_a_passing_score_says_so(viewer, scored):
    community, score = scored
    factories.cache_stamp(USER, signed_stamp(USER, "Google"))
    use_cases.internal_score(scorer_id=community.id, raw_address=USER)
    assert "<h2>passes: 22 of 20</h2>" in page(viewer, f"{ADMIN}/score/{score.pk}/change/")


def test_searches_by_address_on_every_address_page(viewer, scored):
    for name in ("passport", "stamp", "ceramiccache", "hashscorerlink", "humanpoints"):
        assert USER in page(viewer, f"{ADMIN}/{name}/?q={USER}") or name == "humanpoints", name
        assert USER not in page(viewer, f"{ADMIN}/{name}/?q={HOLDER}"), name
    assert USER in page(viewer, f"{ADMIN}/event/?q={USER.upper().replace('0X', '0x')}")
    assert USER not in page(viewer, f"{ADMIN}/event/?q={USER[:12]}")  # events take the full address only


# --- actions -------------------------------------------------------------------------------------------------------


def run_action(client, model_name: str, action: str, ids: list[int]) -> str:
    response = client.post(
        f"{ADMIN}/{model_name}/", {"action": action, "_selected_action": ids, "index": 0}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def test_rescore_runs_the_scoring_pipeline_once_per_score_and_reports_in_words(rescorer, scored):
    community, score = scored
    factories.cache_stamp(USER, signed_stamp(USER, "Google"))
    broken = models.Score.objects.create(
        passport=models.Passport.objects.create(address="not-an-address", community=community),
        status="DONE",
    )
    events_before = count_rows("registry_event", "action = 'SCU' AND address = %s", (USER,))

    html = run_action(rescorer, "score", "recalculate_user_score", [score.pk, broken.pk])

    score.refresh_from_db()
    assert score.evidence["rawScore"] == "22" and score.score == 1 and score.stamps["Google"]["dedup"] is False
    assert count_rows("registry_event", "action = 'SCU' AND address = %s", (USER,)) == events_before + 1
    assert html.count(f"{USER}: score recalculated: 12 → 22, now passes") == 1
    assert html.count("Could not recalculate") == 1 and "not-an-address (" in html
    assert LogEntry.objects.filter(object_id=str(score.pk), change_message__startswith="Recalculated").count() == 1


def test_the_score_page_recalculates_with_its_own_button(rescorer, scored):
    community, score = scored
    url = f"{ADMIN}/score/{score.pk}/change/"
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page(rescorer, url), re.S)
    assert form and form.group(1) == f"{ADMIN}/score/{score.pk}/recalculate/"
    assert 'name="csrfmiddlewaretoken"' in form.group(2) and 'id="recalculate"' in form.group(2)
    factories.cache_stamp(USER, signed_stamp(USER, "Google"))
    before = score.last_score_timestamp

    assert rescorer.get(form.group(1)).status_code == 302  # a GET changes nothing
    assert models.Score.objects.get(pk=score.pk).last_score_timestamp == before
    response = rescorer.post(form.group(1), follow=True)

    assert response.redirect_chain == [(url, 302)]
    html = response.content.decode()
    assert "Score recalculated: 12 → 22, now passes" in html and "<h2>passes: 22 of 20</h2>" in html
    assert models.Score.objects.get(pk=score.pk).score == 1


def test_the_recalculate_button_needs_csrf(rescorer, scored, client):
    from django.test import Client

    user = User.objects.get(username="support-True")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    score = scored[1]
    assert strict.post(f"{ADMIN}/score/{score.pk}/recalculate/").status_code == 403
    assert models.Score.objects.get(pk=score.pk).last_score_timestamp == score.last_score_timestamp


def test_rescore_reports_an_error_state_score_as_a_warning(rescorer, scored):
    community, score = scored
    models.Community.objects.filter(pk=community.pk).update(rule="NOT_LIFO")
    html = run_action(rescorer, "score", "recalculate_user_score", [score.pk])
    assert f"{USER}: score recalculated, but the scoring failed: Invalid rule" in html


def test_rescore_and_undelete_are_refused_without_the_permission(viewer, scored):
    community, score = scored
    stamp = models.CeramicCache.objects.filter(address=USER, provider="Ens").get()
    stamp.deleted_at = datetime.now(UTC)
    stamp.save()
    assert "recalculate_user_score" not in page(viewer, f"{ADMIN}/score/")
    assert "undelete_stamps" not in page(viewer, f"{ADMIN}/ceramiccache/")
    score_page = page(viewer, f"{ADMIN}/score/{score.pk}/change/")
    assert 'id="recalculate"' not in score_page and "needs the “Can rescore individual scores” permission" in score_page
    assert viewer.post(f"{ADMIN}/score/{score.pk}/recalculate/").status_code == 403

    run_action(viewer, "score", "recalculate_user_score", [score.pk])
    run_action(viewer, "ceramiccache", "undelete_stamps", [stamp.pk])

    assert models.Score.objects.get(pk=score.pk).last_score_timestamp == score.last_score_timestamp
    assert models.CeramicCache.objects.get(pk=stamp.pk).deleted_at is not None


def test_undelete_restores_deleted_stamps_and_lists_the_ones_it_cannot(rescorer, scored):
    deleted_at = datetime.now(UTC) - timedelta(days=1)
    ens = models.CeramicCache.objects.get(address=USER, provider="Ens")
    models.CeramicCache.objects.filter(pk=ens.pk).update(deleted_at=deleted_at)
    replaced = factories.cache_stamp(USER, signed_stamp(USER, "Google"))
    models.CeramicCache.objects.filter(pk=replaced.pk).update(deleted_at=deleted_at + timedelta(hours=1))
    factories.cache_stamp(USER, signed_stamp(USER, "Google"))  # a live Google row again: the old one must stay
    live = models.CeramicCache.objects.get(address=USER, provider="Github")

    html = run_action(rescorer, "ceramiccache", "undelete_stamps", [ens.pk, replaced.pk, live.pk])

    assert models.CeramicCache.objects.get(pk=ens.pk).deleted_at is None
    assert models.CeramicCache.objects.get(pk=replaced.pk).deleted_at is not None
    assert html.count("Undeleted 1 stamp(s)") == 1
    assert f"{replaced.pk} (a live stamp for this provider exists)" in html and f"{live.pk} (not deleted)" in html


# --- secrets, deletions, /docs ----------------------------------------------------------------------------------


def test_no_page_shows_an_api_key_or_its_hashes(viewer, scored, settings):
    owner = scored[0].account
    key = factories.api_key(owner, storage="pbkdf2")
    row = models.AccountAPIKey.objects.get(prefix=key.split(".")[0])
    models.AccountAPIKeyAnalytics.objects.create(
        api_key=row, path="/v2/x", created_at=datetime.now(UTC), status_code=200, headers={"X-Api-Key": key}
    )
    usage = models.AccountAPIKeyAnalytics.objects.get()
    pages = [page(viewer, f"{ADMIN}/{name}/") for name in LISTS]
    pages += [page(viewer, f"{ADMIN}/{name}/?q={row.prefix}") for name in ("accountapikey",)]
    pages += [page(viewer, f"{ADMIN}/accountapikeyanalytics/{usage.pk}/change/")]
    pages += [page(viewer, f"{ADMIN}/account/{owner.pk}/change/")]
    listing = pages[LISTS.index("accountapikey")]
    assert row.prefix in listing and f"{owner.address[:8]}…{owner.address[-6:]}" in listing and "125/15m" in listing
    for html in pages:
        assert row.hashed_key not in html and row.pk not in html and key not in html
        assert "pbkdf2_sha256$" not in html
    assert viewer.get(f"{ADMIN}/accountapikey/{row.pk}/change/").status_code in (302, 403)


def test_users_that_accounts_point_at_cannot_be_deleted(client, scored):
    admin_user = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin_user)
    owner_user = scored[0].account.user
    lonely = User.objects.create_user("lonely")

    assert client.get(f"/admin/auth/user/{owner_user.pk}/delete/").status_code == 403
    assert client.post(f"/admin/auth/user/{owner_user.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [owner_user.pk]}
    confirm = client.post("/admin/auth/user/", bulk)
    assert confirm.status_code == 200 and "permission to delete" in confirm.content.decode()
    assert client.post("/admin/auth/user/", {**bulk, "post": "yes"}).status_code == 403
    assert User.objects.filter(pk=owner_user.pk).exists()
    assert client.post(f"/admin/auth/user/{lonely.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not User.objects.filter(pk=lonely.pk).exists()
    group = Group.objects.create(name="admin_read_only")
    assert client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"}).status_code == 302


def test_docs_reference_only_local_assets(client):
    html = page(client, "/docs")
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(asset.startswith("/static/") for asset in assets), assets
    assert "cdn" not in html.lower()
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), asset  # collected by collectstatic


def test_docs_describe_the_routes_for_partners_with_typed_stamps(client):
    schema = client.get("/openapi.json").json()
    text = json.dumps(schema)
    v2 = schema["paths"]["/v2/stamps/{scorer_id}/score/{address}"]["get"]
    assert v2["summary"] == "Score an address with one of your scorers"
    assert "`passing_score`" in v2["description"] and "429" in v2["description"]
    assert "X-API-Key" in schema["info"]["description"] and schema["info"]["title"] == "Passport scorer API"
    for internal_note in ("serialized", "domain/", "ninja", "analytics row", "SELECT 1"):
        assert internal_note not in text, internal_note
    stamps = schema["components"]["schemas"]["ScoreOut"]["properties"]["stamps"]
    assert stamps["additionalProperties"] == {"$ref": "#/components/schemas/StampEntry"}
    entry = schema["components"]["schemas"]["StampEntry"]["properties"]
    assert entry["score"]["type"] == "string" and entry["dedup"]["type"] == "boolean"
    assert set(entry) == {"score", "dedup", "expiration_date"} and "description" in entry["dedup"]
    summaries = [op["summary"] for ops in schema["paths"].values() for op in ops.values()]
    assert all(summary[0].isupper() and " " in summary for summary in summaries), summaries  # sentences, not names
    assert "Add Stamps" not in summaries and "Score Address" not in summaries
    assert {tag["name"] for tag in schema["tags"]} >= {"v2", "registry", "ceramic-cache", "embed", "internal"}


# --- production size -------------------------------------------------------------------------------------------

ROWS = 1_200


@pytest.fixture
def big_tables(scored):
    """ROWS rows in every address table, written with bulk inserts."""
    community = scored[0]
    now = datetime.now(UTC)
    addresses = ["0x" + hashlib.sha1(str(n).encode()).hexdigest() for n in range(ROWS)]  # selective prefixes
    passports = models.Passport.objects.bulk_create(models.Passport(address=a, community=community) for a in addresses)
    evidence = {"type": "ThresholdScoreCheck", "success": False, "rawScore": "1.5", "threshold": "20"}
    models.Score.objects.bulk_create(
        models.Score(passport=p, score=0, status="DONE", evidence=evidence, last_score_timestamp=now) for p in passports
    )
    credential = {"expirationDate": "2030-01-01T00:00:00Z", "proof": {"proofValue": "x" * 40}}
    models.Stamp.objects.bulk_create(models.Stamp(passport=p, provider="Ens", credential=credential) for p in passports)
    models.CeramicCache.objects.bulk_create(
        models.CeramicCache(
            address=a,
            provider="Ens",
            stamp=credential,
            updated_at=now,
            type=1,
            compose_db_save_status="",
            compose_db_stream_id="",
            proof_value=f"proof{a}",
        )
        for a in addresses
    )
    models.Event.objects.bulk_create(
        models.Event(action="SCU", address=a, created_at=now, data={}, community=community) for a in addresses
    )
    models.HashScorerLink.objects.bulk_create(
        models.HashScorerLink(hash=f"v0:{a}", address=a, expires_at=now, community=community) for a in addresses
    )
    models.HumanPoints.objects.bulk_create(
        models.HumanPoints(address=a, action="SCB", timestamp=now, tx_hash="", chain_id=0, provider="")
        for a in addresses
    )
    models.HumanPointsCommunityQualifiedUsers.objects.bulk_create(
        models.HumanPointsCommunityQualifiedUsers(address=a, community=community) for a in addresses
    )
    users = User.objects.bulk_create(User(username=f"bulk{n}") for n in range(ROWS))
    accounts = models.Account.objects.bulk_create(models.Account(address=a, user=u) for a, u in zip(addresses, users))
    models.AccountAPIKey.objects.bulk_create(
        models.AccountAPIKey(
            id=f"k{n:07d}.hash",
            prefix=f"k{n:07d}",
            hashed_key="hash",
            created=now,
            name=f"key {n}",
            revoked=False,
            account=account,
            create_scorers=False,
            read_scores=True,
            submit_passports=True,
            historical_endpoint=False,
        )
        for n, account in enumerate(accounts)
    )
    keys = list(models.AccountAPIKey.objects.all()[:ROWS])
    models.AccountAPIKeyAnalytics.objects.bulk_create(
        models.AccountAPIKeyAnalytics(api_key=key, path="/v2/x", status_code=200, created_at=now) for key in keys
    )
    models.Community.objects.bulk_create(
        models.Community(
            name=f"bulk {n}",
            description="",
            account=account,
            scorer_id=community.scorer_id,
            rule="LIFO",
            human_points_program=False,
        )
        for n, account in enumerate(accounts)
    )
    return community, addresses


MAX_LIST_QUERIES = 10


def list_queries(name: str, community_id: int, address: str) -> list[str]:
    model_admin = next(ma for model, ma in admin.site._registry.items() if model._meta.model_name == name)
    queries = ["", f"?q={address}", f"?q={address[:30]}"]
    if any(getattr(f, "parameter_name", None) == "community" for f in model_admin.list_filter):
        queries.append(f"?community={community_id}")
    return queries


def test_list_pages_run_a_bounded_number_of_queries_at_production_size(
    viewer, big_tables, django_assert_max_num_queries, monkeypatch
):
    community, addresses = big_tables
    for name in LISTS:
        for query in list_queries(name, community.id, addresses[7]):
            with django_assert_max_num_queries(MAX_LIST_QUERIES):
                html = page(viewer, f"{ADMIN}/{name}/{query}")
            if name in ("score", "ceramiccache", "passport", "stamp") and query == "":
                assert html.count('class="field-address"') == 50, name
                assert f"{ROWS + 2} " in html or f"{ROWS + 1} " in html or name == "ceramiccache", name
    with django_assert_max_num_queries(MAX_LIST_QUERIES):
        assert addresses[7] in page(viewer, f"/admin/address/?address={addresses[7]}")
    monkeypatch.setattr(CappedCountPaginator, "CAP", 1000)  # the count stops at CAP + 1 rows
    assert "More than 1000 scores" in page(viewer, f"{ADMIN}/score/")


BIG_TABLES = (
    "registry_passport",
    "registry_score",
    "registry_stamp",
    "registry_event",
    "ceramic_cache_ceramiccache",
    "registry_hashscorerlink",
    "registry_humanpoints",
    "registry_humanpointscommunityqualifiedusers",
    "account_account",
)


@pytest.mark.skipif(not os.environ.get("SCORER_SCHEMA_SQL"), reason="the production indexes exist in schema.sql only")
def test_searches_use_the_production_indexes(viewer, big_tables):
    community, addresses = big_tables
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    for name in ("score", "passport", "stamp", "ceramiccache", "event", "hashscorerlink", "humanpoints", "account"):
        for term in (addresses[3],) if name == "event" else (addresses[3], addresses[3][:20]):
            plans = big_table_plans(viewer, f"{ADMIN}/{name}/?q={term}")
            assert any(re.search(r"Index Cond: .*address", plan) for plan in plans), (name, term, plans)
            for plan in plans:
                assert "upper(" not in plan.lower(), (name, plan)
                for table in BIG_TABLES:
                    assert f"Seq Scan on {table}" not in plan, (name, term, plan)


@pytest.mark.skipif(not os.environ.get("SCORER_SCHEMA_SQL"), reason="the production indexes exist in schema.sql only")
def test_the_address_page_uses_the_production_indexes(viewer, big_tables):
    community, addresses = big_tables
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    plans = big_table_plans(viewer, f"/admin/address/?address={addresses[3]}")
    assert len(plans) >= 3
    for plan in plans:  # each of its queries finds the address through an index, none scans a table
        assert re.search(r"Index Cond: .*address", plan) and "upper(" not in plan.lower(), plan
        for table in BIG_TABLES:
            assert f"Seq Scan on {table}" not in plan, plan


def big_table_plans(client, url: str) -> list[str]:
    """The plans of the queries a page runs on the large tables."""
    with CaptureQueriesContext(connection) as captured:
        page(client, url)
    return [
        explain_without_seqscan(query["sql"])
        for query in captured.captured_queries
        if query["sql"].startswith("SELECT") and any(table in query["sql"] for table in BIG_TABLES)
    ]


def explain_without_seqscan(sql: str) -> str:
    """With sequential scans priced out, PostgreSQL still picks one only when no index can serve the query."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


# --- hostile input ---------------------------------------------------------------------------------------------

HOSTILE_IDS = ("%00", "%ff%fe", "x" * 3000, "99999999999999999999999", "-1", "1", "0x%00ff")
HOSTILE_VALUES = ["%00", "0x%00ff", "%ff%fe", "x" * 3000, "nope", "-1", "99999999999999999999999", "%27%22%3C"]


def hostile_queries(model_admin: admin.ModelAdmin) -> list[str]:
    params = ["q", "o", "p", "e", "all", "_to_field"] + [
        getattr(f, "parameter_name", None) or str(f) for f in model_admin.list_filter
    ]
    return [f"?{param}={value}" for param in params for value in HOSTILE_VALUES]


def test_no_admin_url_answers_5xx_for_hostile_query_strings(viewer, scored):
    """Every registered list with hostile filter, search, ordering and page values, and every detail URL with
    hostile ids: an admin page (a message or no rows), never a 5xx."""
    factories.api_key(scored[0].account)
    viewer.raise_request_exception = False
    failures, seen = [], 0
    for model, model_admin in admin.site._registry.items():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        urls = [base + query for query in hostile_queries(model_admin)]
        urls += [f"{base}{object_id}/change/" for object_id in HOSTILE_IDS]
        urls += [f"{base}{object_id}/recalculate/" for object_id in HOSTILE_IDS if model is models.Score]
        for url in urls:
            response = viewer.get(url)
            seen += 1
            if response.status_code >= 500:
                failures.append((url.replace("x" * 3000, "x…"), response.status_code))
    for value in HOSTILE_VALUES:
        response = viewer.get(f"/admin/address/?address={value}")
        seen += 1
        if response.status_code >= 500:
            failures.append((f"address={value[:20]}", response.status_code))
    assert not failures, failures
    assert seen > 1000


@pytest.mark.parametrize(
    "query",
    ["score/?status=%00", "stamp/?provider=%00", "event/?action=%00", "score/?status=NOPE", "score/?passing=maybe"],
)
def test_a_hostile_filter_value_lists_no_rows_and_says_why(viewer, scored, query):
    html = page(viewer, f"{ADMIN}/{query}")
    assert "no rows match" in html and 'class="field-address"' not in html and USER not in html


def test_a_search_term_with_a_nul_lists_no_rows(viewer, scored):
    html = page(viewer, f"{ADMIN}/score/?q=0x%00ff")
    assert "Null characters are not allowed" in html and USER not in html and HOLDER not in html


def test_an_unknown_parameter_shows_the_list_with_a_message(viewer, scored):
    response = viewer.get(f"{ADMIN}/score/?bogus=1", follow=True)
    html = response.content.decode()
    assert response.status_code == 200 and "was not understood" in html and "Database error" not in html
    assert USER in html


def test_admin_errors_are_admin_pages_and_the_api_keeps_its_json(viewer, scored, client):
    missing = viewer.get("/admin/no-such-page/")
    assert missing.status_code == 404 and missing["Content-Type"].startswith("text/html")
    html = missing.content.decode()
    assert 'id="site-name"' in html and 'href="/admin/"' in html and "Page not found" in html
    api = client.get("/v2/no-such-route")
    assert api.status_code == 404 and api.json() == {"error": "Not Found"}
    assert client.get("/internal/nope").json() == {"detail": "Not Found"}


# --- API keys: found by prefix, the secret never in a URL, a log line or a page ------------------------------------


def test_a_pasted_api_key_is_searched_by_its_prefix_and_its_secret_goes_nowhere(viewer, scored, caplog):
    key = factories.api_key(scored[0].account)
    prefix, secret = key.split(".")
    factories.api_key(scored[0].account)  # another key, not listed by the search
    listing = page(viewer, f"{ADMIN}/accountapikey/")
    assert 'id="changelist-search" method="post" action="search/"' in listing
    assert "API keys are found by their prefix" in listing

    with caplog.at_level("DEBUG"):
        response = viewer.post(f"{ADMIN}/accountapikey/search/", {"q": f" {key} ", "revoked": "0"})
        assert response.status_code == 302
        assert response["Location"] == f"{ADMIN}/accountapikey/?revoked=0&q={prefix}"
        html = page(viewer, response["Location"])
        typed = viewer.get(f"{ADMIN}/accountapikey/?q={key}")  # pasted into the address bar by hand
    assert typed.status_code == 302 and typed["Location"] == f"{ADMIN}/accountapikey/?q={prefix}"
    assert "Searched by the key&#x27;s prefix only" in html and html.count('class="field-prefix"') == 1
    assert prefix in cells(html) and secret not in html
    assert secret not in caplog.text and key not in caplog.text


KEY_COLUMNS = ["Prefix", "Name", "Account", "Rate limits", "Permissions", "State", "Created"]


def test_the_key_list_fits_a_laptop_screen_and_a_key_link_answers_an_admin_styled_403(viewer, scored):
    key = factories.api_key(scored[0].account)
    row = models.AccountAPIKey.objects.get(prefix=key.split(".")[0])
    html = page(viewer, f"{ADMIN}/accountapikey/")
    html = html[html.find('id="result_list"') :]
    headers = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r'<th scope="col".*?</th>', html, re.S)]
    assert [h for h in headers if h] == KEY_COLUMNS
    assert "scoring 125/15m<br>analysis unlimited<br>embed 125/15m" in html and "active, never expires" in html

    response = viewer.get(f"{ADMIN}/accountapikey/{row.pk}/change/")
    denied = response.content.decode()
    assert response.status_code == 403 and response["Content-Type"].startswith("text/html")
    assert 'id="site-name"' in denied and "Not allowed" in denied and "has no page of its own" in denied
    assert row.hashed_key not in denied and key not in denied


# --- the index, the address page, dates, list descriptions, stamp pages ---------------------------------------------


def test_the_index_leads_with_an_address_box_then_the_pages_support_uses(viewer, scored):
    html = page(viewer, "/admin/")
    main = html[html.find('id="content-main"') :]
    assert main.find('action="/admin/address/"') < main.find("<caption>")  # the box comes first
    assert re.search(r'<input type="text" name="address" id="address-box"', main)
    captions = re.findall(r"<caption>(.*?)</caption>", main)
    assert captions[0] == "What support uses" and "Human points" in captions
    first = main[: main.find("</table>")]
    names = re.findall(r'<th scope="row"><a href="[^"]+">(.*?)</a>', first)
    assert names == ["Scores", "Stamps held", "Events", "API keys", "Communities (scorers)"]
    assert "Only the stamps that counted" in main  # each entry says what its list holds
    for internal in ("(existing tables)", "Hash scorer links", "Ceramic cache stamps", "Passport scorer (existing"):
        assert internal not in html, internal


def test_the_address_page_shows_the_addresss_scores_stamps_and_events(viewer, scored):
    community, score = scored
    html = page(viewer, f"/admin/address/?address=+{USER.upper().replace('0X', '0x')}+")
    assert f"<h1>Address {USER}</h1>" in html
    scores = cells(html[html.find('id="address-scores"') : html.find('id="address-stamps"')])
    assert str(community) in scores and "does not pass: 12, needs 20" in scores
    assert f'href="{ADMIN}/score/{score.pk}/change/"' in html
    stamps = cells(html[html.find('id="address-stamps"') : html.find('id="address-events"')])
    assert "Ens" in stamps and "Github" in stamps and stamps.count("live") == 2
    events = cells(html[html.find('id="address-events"') :])
    assert "score updated" in events and "stamp de-duplicated" in events and "SCU" not in events
    assert HOLDER not in html


@pytest.mark.parametrize("typed", ["%00", "0x%00ff", "%ff%fe", "x" * 3000, "0xaaaa", "nope", "%27%22%3C"])
def test_the_address_page_answers_odd_input_with_a_message(viewer, scored, typed):
    html = page(viewer, f"/admin/address/?address={typed}")
    assert "is not a full address" in html and 'id="address-scores"' not in html and USER not in html


def test_one_date_format_in_utc_said_once(viewer, scored):
    community, score = scored
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    models.Score.objects.filter(pk=score.pk).update(last_score_timestamp=at)
    models.CeramicCache.objects.filter(address=USER).update(issuance_date=at, expiration_date=at, updated_at=at)
    models.Event.objects.filter(address=USER).update(created_at=at)
    pages = [
        page(viewer, f"{ADMIN}/score/?q={USER}"),
        page(viewer, f"{ADMIN}/score/{score.pk}/change/"),
        page(viewer, f"{ADMIN}/ceramiccache/?q={USER}"),
        page(viewer, f"{ADMIN}/event/?q={USER}"),
        page(viewer, f"/admin/address/?address={USER}"),
    ]
    for html in pages:
        html = re.sub(r"<details>.*?</details>", "", html, flags=re.S)  # the raw JSON keeps its stored format
        assert "2026-01-02 03:04" in html
        assert "Jan. 2" not in html and "a.m." not in html and "2026-01-02T03:04" not in html and "+00:00" not in html
        assert html.count("all times UTC") == 1


def test_every_list_says_what_it_holds(viewer, scored):
    for model in admin.site._registry:
        if model._meta.app_label != "scorer_fast":
            continue  # Django's own users and groups
        html = page(viewer, f"{ADMIN}/{model._meta.model_name}/")
        name = model._meta.model_name
        assert re.search(r'<p class="list-description" id="list-description">\w', html), name
    counted = page(viewer, f"{ADMIN}/stamp/")
    assert "Only the stamps that counted at each address" in counted and "<h1>Counted stamps</h1>" in counted


def test_stamp_pages_lead_with_provider_issuer_dates_and_nullifiers_and_fold_the_json(viewer, scored):
    held = models.CeramicCache.objects.get(address=USER, provider="Github")
    counted = models.Stamp.objects.get(passport__address=USER, provider="Ens")
    for url, provider, nullifier in (
        (f"{ADMIN}/ceramiccache/{held.pk}/change/", "Github", SHARED),
        (f"{ADMIN}/stamp/{counted.pk}/change/", "Ens", counted.credential["credentialSubject"]["nullifiers"][0]),
    ):
        html = page(viewer, url)
        facts = html[html.find('<table class="facts">') : html.find("</table>", html.find('<table class="facts">'))]
        assert [re.sub(r"<[^>]+>", "", th) for th in re.findall(r"<th>(.*?)</th>", facts)] == [
            "provider",
            "issuer",
            "issued",
            "expires",
            "nullifiers",
        ]
        assert f"<td>{provider}</td>" in facts and nullifier in facts and "did:" in facts
        assert html.find('<table class="facts">') < html.find("<details>") < html.find("&quot;proof&quot;")
        assert "<summary>Show the raw JSON (proof hidden)</summary>" in html
        assert "\\u2026" not in html and "… (hidden)" in html
    held_page = page(viewer, f"{ADMIN}/ceramiccache/{held.pk}/change/")
    assert "Type:" not in held_page and "Source app" not in held_page and "V1" in held_page


@pytest.mark.parametrize("typed", ["%00", "x" * 3000, "%ff%fe", "", ".", "abc.def.ghi", "%3Cscript%3E"])
def test_the_key_search_takes_any_text_without_a_5xx(viewer, scored, typed):
    form = "application/x-www-form-urlencoded"
    response = viewer.post(f"{ADMIN}/accountapikey/search/", f"q={typed}", content_type=form)
    assert response.status_code == 302 and ".def" not in response["Location"]
    assert viewer.get(response["Location"]).status_code == 200
    assert viewer.get(f"{ADMIN}/accountapikey/search/").status_code == 302  # a GET only leads back to the list


def test_a_failed_scoring_and_a_revoked_key_say_so_in_words(viewer, scored):
    community, score = scored
    models.Score.objects.filter(pk=score.pk).update(status="ERROR", error="Invalid rule")
    assert "<h2>not scored: the last scoring failed (Invalid rule)</h2>" in page(
        viewer, f"{ADMIN}/score/{score.pk}/change/"
    )
    key = factories.api_key(community.account, revoked=True)
    listing = page(viewer, f"{ADMIN}/accountapikey/?q={key.split('.')[0]}")
    assert "revoked" in cells(listing)
