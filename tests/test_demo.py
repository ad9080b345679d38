"""The demo a support engineer starts from: seed_demo scores the demo addresses through the service layer, so the
admin shows each address's score and why (the de-duplicated stamp and who holds its nullifier) before any request."""

import io
import re
from decimal import Decimal

import pytest
from django.core.management import call_command

from scorer_fast.models import CeramicCache, Score

pytestmark = pytest.mark.django_db
PASSING, BELOW, DUPLICATE = ("0x" + c * 40 for c in "def")


@pytest.fixture
def seeded(settings) -> str:
    settings.TRUSTED_IAM_ISSUERS = [settings.DEMO_ISSUER_DID]  # as the development settings do
    out = io.StringIO()
    call_command("seed_demo", base_url="http://demo", stdout=out, allow_any_database=bool(settings.DATABASE_URL))
    return out.getvalue()


def test_seeding_scores_every_demo_address_with_one_shared_nullifier(seeded):
    scores = {s.passport.address: s for s in Score.objects.select_related("passport")}
    assert set(scores) == {PASSING, BELOW, DUPLICATE}
    assert (
        round(Decimal(scores[PASSING].evidence["rawScore"]), 5) == Decimal("22.72200")
        and scores[PASSING].evidence["success"] is True
    )
    assert scores[BELOW].evidence["success"] is False
    assert scores[DUPLICATE].stamps["Github"]["dedup"] is True and scores[DUPLICATE].evidence["rawScore"] == "0"
    assert CeramicCache.objects.filter(address=PASSING, deleted_at__isnull=True).count() == 5
    assert re.search(
        rf"{DUPLICATE}\s+score 0\.00000 \(below 20\.00000\)\s+counted: none\s+de-duplicated: Github", seeded
    )


def test_the_admin_shows_why_the_duplicate_scored_zero(seeded, admin_client):
    link = re.search(r"Why a score: (http://demo)(\S+)", seeded).group(2)
    listing = admin_client.get(link).content.decode()
    score = Score.objects.get(passport__address=DUPLICATE)
    assert f"/admin/scorer_fast/score/{score.pk}/change/" in listing
    page = admin_client.get(f"/admin/scorer_fast/score/{score.pk}/change/").content.decode()
    assert "de-duplicated" in page and PASSING in page  # the address that holds the Github nullifier


def test_the_admin_url_is_printed_once_with_how_to_log_in(seeded):
    assert seeded.count("http://demo/admin/") == 2  # the admin's URL, and the search link under it
    assert seeded.count("Support admin: http://demo/admin/\n") == 1
    assert ".venv/bin/python manage.py createsuperuser" in seeded and "DEMO_ADMIN=on scripts/serve" in seeded


def test_create_admin_makes_a_one_off_superuser_login(settings, client):
    settings.TRUSTED_IAM_ISSUERS = [settings.DEMO_ISSUER_DID]
    out = io.StringIO()
    call_command("seed_demo", stdout=out, create_admin=True, allow_any_database=bool(settings.DATABASE_URL))
    password = re.search(r"log in as 'demo-admin' with password (\S+) \(shown once", out.getvalue()).group(1)
    assert client.login(username="demo-admin", password=password)
    assert client.get("/admin/scorer_fast/score/").status_code == 200
    call_command("seed_demo", stdout=io.StringIO(), create_admin=True, allow_any_database=bool(settings.DATABASE_URL))
    client.logout()
    assert not client.login(username="demo-admin", password=password)  # every run prints a new password
