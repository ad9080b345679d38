"""POST /registry/submit-passport: exact v1 bodies, rows written, signed nonces, every refusal."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from scorer_fast.models import AccountAPIKeyAnalytics, Event, HashScorerLink, Nonce, Passport, Score, Stamp
from tests import factories
from tests.credentials import signed_stamp
from tests.helpers import iso
from tests.wallets import OTHER_WALLET, WALLET_ADDRESS, sign_nonce

pytestmark = pytest.mark.django_db

ADDRESS = WALLET_ADDRESS
OTHER = "0x" + "b" * 40
WEIGHTS = {"Ens": 0.208, "Google": 0.525, "Lens": 19.8}
URL = "/registry/submit-passport"
KEYS = ["address", "score", "status", "last_score_timestamp", "expiration_date", "evidence", "error", "stamp_scores"]


@pytest.fixture
def partner():
    owner = factories.account()
    community = factories.community(owner=owner, weights=WEIGHTS, threshold="20")
    return owner, community, factories.api_key(owner)


def submit(client, key, body, **headers):
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(URL, content, content_type="application/json", HTTP_X_API_KEY=key, **headers)


def nonce(value: str, *, used: bool = False, expires_in: timedelta | None = None) -> Nonce:
    now = datetime.now(UTC)
    return Nonce.objects.create(
        nonce=value, created_on=now, was_used=used, expires_on=now + expires_in if expires_in is not None else None
    )


def nothing_scored() -> bool:
    return Passport.objects.count() == 0 and Score.objects.count() == 0 and Event.objects.count() == 0


def test_a_threshold_scorer_answers_the_v1_body_and_writes_one_scoring(client, partner):
    _owner, community, key = partner
    ens, lens = signed_stamp(ADDRESS, "Ens", days_valid=10), signed_stamp(ADDRESS, "Lens", days_valid=40)
    factories.cache_stamp(ADDRESS, ens)
    factories.cache_stamp(ADDRESS, lens)

    response = submit(client, key, {"address": ADDRESS.upper().replace("0X", "0x"), "scorer_id": community.id})

    assert response.status_code == 200, response.content
    body = response.json()
    assert list(body) == KEYS
    score = Score.objects.get()
    assert body == {
        "address": ADDRESS,
        "score": "1",
        "status": "DONE",
        "last_score_timestamp": score.last_score_timestamp.isoformat(),
        "expiration_date": iso(ens["expirationDate"]),
        "evidence": {"type": "ThresholdScoreCheck", "success": True, "rawScore": 20.008, "threshold": 20.0},
        "error": None,
        "stamp_scores": {"Ens": 0.208, "Lens": 19.8},
    }
    assert score.evidence["rawScore"] == "20.00800000000000070099481775"
    assert (Passport.objects.get().address, score.status) == (ADDRESS, "DONE")
    assert sorted(Stamp.objects.values_list("provider", flat=True)) == ["Ens", "Lens"]
    assert HashScorerLink.objects.filter(address=ADDRESS, community=community).count() == 2
    assert Event.objects.filter(action="SCU", address=ADDRESS).count() == 1


def test_the_binary_score_and_float_evidence_follow_the_stored_strings(client):
    owner = factories.account()
    community = factories.community(owner=owner, weights={"Ens": 0.208, "Google": 1.5309999999999999}, threshold="20")
    key = factories.api_key(owner)
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Ens"))
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Google"))
    response = submit(client, key, {"address": ADDRESS, "scorer_id": str(community.id)})
    body = response.json()
    stored = Score.objects.get().evidence
    assert stored["rawScore"] == "1.738999999999999906963310536"
    assert body["score"] == "0"
    assert body["evidence"] == {"type": "ThresholdScoreCheck", "success": False, "rawScore": 1.7389999999999999,
                                "threshold": 20.0}  # fmt: skip
    assert b"1.7389999999999999," in response.content  # the shortest round-trip form on the wire


@pytest.mark.parametrize(
    "weights, providers, expected",
    [
        ({"Ens": 13.483, "Lens": 17.873}, ["Ens", "Lens"], "31.356000000"),
        ({"Ens": 19}, ["Ens"], "19.000000000"),
        ({"Ens": 0}, ["Ens"], "0E-9"),
    ],
)
def test_a_weighted_scorer_answers_nine_decimals_and_no_evidence(client, weights, providers, expected):
    owner = factories.account()
    community = factories.community(owner=owner, weights=weights, scorer_type="WEIGHTED")
    key = factories.api_key(owner)
    for provider in providers:
        factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, provider))
    body = submit(client, key, {"address": ADDRESS, "scorer_id": community.id}).json()
    assert (body["score"], body["evidence"], body["status"]) == (expected, None, "DONE")
    assert body["stamp_scores"] == {provider: float(weights[provider]) for provider in providers}
    assert Score.objects.get().score in (0, 1)  # the stored column stays binary


def test_no_stamps_and_the_error_state(client, partner):
    _owner, community, key = partner
    body = submit(client, key, {"address": ADDRESS, "scorer_id": community.id}).json()
    assert (body["score"], body["expiration_date"], body["stamp_scores"]) == ("0", None, {})
    assert body["evidence"] == {"type": "ThresholdScoreCheck", "success": False, "rawScore": 0.0, "threshold": 20.0}
    broken = factories.community(owner=_owner, rule="FIFO")
    body = submit(client, key, {"address": ADDRESS, "scorer_id": broken.id}).json()
    assert body == {
        "address": ADDRESS,
        "score": None,
        "status": "ERROR",
        "last_score_timestamp": None,
        "expiration_date": None,
        "evidence": None,
        "error": "Invalid rule",
        "stamp_scores": {},
    }


def test_scorer_found_by_external_id_by_legacy_community_field_and_as_a_number(client, partner):
    owner, community, key = partner
    external = factories.community(owner=owner, external_scorer_id="ext-7")
    assert submit(client, key, {"address": ADDRESS, "scorer_id": "ext-7"}).status_code == 200
    assert submit(client, key, {"address": ADDRESS, "community": str(community.id)}).status_code == 200
    assert submit(client, key, {"address": ADDRESS, "scorer_id": community.id, "unknown": 1}).status_code == 200
    assert set(Passport.objects.values_list("community_id", flat=True)) == {external.id, community.id}


def test_an_address_without_0x_gets_its_own_passport(client, partner):
    _owner, community, key = partner
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Ens"))
    body = submit(client, key, {"address": ADDRESS[2:], "scorer_id": community.id}).json()
    assert (body["address"], body["stamp_scores"]) == (ADDRESS[2:], {})
    assert Passport.objects.get().address == ADDRESS[2:]


def test_a_deduplicated_stamp_is_left_out_of_stamp_scores(client, partner):
    _owner, community, key = partner
    factories.cache_stamp(OTHER, signed_stamp(OTHER, "Lens", nullifiers=["v0:shared"]))
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Lens", nullifiers=["v0:shared"]))
    factories.cache_stamp(ADDRESS, signed_stamp(ADDRESS, "Ens"))
    assert submit(client, key, {"address": OTHER, "scorer_id": community.id}).json()["stamp_scores"] == {"Lens": 19.8}

    body = submit(client, key, {"address": ADDRESS, "scorer_id": community.id}).json()

    assert (body["score"], body["stamp_scores"]) == ("0", {"Ens": 0.208})
    assert list(Stamp.objects.filter(passport__address=ADDRESS).values_list("provider", flat=True)) == ["Ens"]
    assert Event.objects.get(action="LDP").address == ADDRESS
    assert HashScorerLink.objects.get(hash="v0:shared").address == OTHER


# --- signed submissions ---------------------------------------------------------------------------------------


def test_a_signed_submission_spends_its_nonce_once(client, partner):
    _owner, community, key = partner
    nonce("abc123")
    body = {"address": ADDRESS, "scorer_id": community.id, "signature": sign_nonce("abc123"), "nonce": "abc123"}
    first = submit(client, key, body)
    assert first.status_code == 200 and first.json()["status"] == "DONE"
    assert Nonce.objects.get().was_used is True

    replay = submit(client, key, body)

    assert (replay.status_code, replay.json()) == (400, {"error": "Invalid nonce."})
    assert Event.objects.filter(action="SCU").count() == 1  # the replay scored nothing


def test_a_mixed_case_nonce_matches_its_stored_row_and_is_signed_as_given(client, partner):
    _owner, community, key = partner
    nonce("mixedcase")
    body = {"address": ADDRESS, "scorer_id": community.id, "signature": sign_nonce("MixedCase"), "nonce": "MixedCase"}
    assert submit(client, key, body).status_code == 200
    assert Nonce.objects.get().was_used is True


def test_a_signature_without_0x_and_with_v_0_or_1_is_accepted(client, partner):
    _owner, community, key = partner
    nonce("n1")
    nonce("n2")
    plain = sign_nonce("n1")[2:]
    low_v = sign_nonce("n2")
    low_v = low_v[:-2] + f"{int(low_v[-2:], 16) - 27:02x}"
    for value, signature in (("n1", plain), ("n2", low_v)):
        body = {"address": ADDRESS, "scorer_id": community.id, "signature": signature, "nonce": value}
        assert submit(client, key, body).status_code == 200


@pytest.mark.parametrize(
    "row", [None, {"used": True}, {"expires_in": timedelta(seconds=-1)}], ids=["unknown", "used", "expired"]
)
def test_an_unusable_nonce_is_refused_and_nothing_is_scored(client, partner, row):
    _owner, community, key = partner
    if row is not None:
        nonce("n-1", **row)
    body = {"address": ADDRESS, "scorer_id": community.id, "signature": sign_nonce("n-1"), "nonce": "n-1"}
    response = submit(client, key, body)
    assert (response.status_code, response.json()) == (400, {"error": "Invalid nonce."})
    assert nothing_scored()


def test_an_unexpired_nonce_is_accepted(client, partner):
    _owner, community, key = partner
    nonce("fresh", expires_in=timedelta(minutes=5))
    body = {"address": ADDRESS, "scorer_id": community.id, "signature": sign_nonce("fresh"), "nonce": "fresh"}
    assert submit(client, key, body).status_code == 200


def test_a_signature_from_another_wallet_is_refused_and_keeps_the_nonce(client, partner):
    _owner, community, key = partner
    nonce("n-2")
    signature = sign_nonce("n-2", OTHER_WALLET)
    body = {"address": ADDRESS, "scorer_id": community.id, "signature": signature, "nonce": "n-2"}
    response = submit(client, key, body)
    assert (response.status_code, response.json()) == (400, {"error": "Address does not match signature."})
    assert Nonce.objects.get().was_used is False and nothing_scored()
    wrong_nonce = {**body, "signature": sign_nonce("other-nonce")}  # signed another message
    assert submit(client, key, wrong_nonce).json() == {"error": "Address does not match signature."}


def test_without_a_signature_the_nonce_is_ignored(client, partner):
    _owner, community, key = partner
    nonce("spent", used=True)
    assert submit(client, key, {"address": ADDRESS, "scorer_id": community.id, "nonce": "spent"}).status_code == 200


# --- refusals ----------------------------------------------------------------------------------------------------


SIGNED = '{"address": "ADDRESS", "scorer_id": 1, "signature": %s}'.replace("ADDRESS", ADDRESS)
NOT_JSON = "Request body is not valid JSON: Unterminated string starting at: line 1 column 13 (char 12)"


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"address": "0x', NOT_JSON),
        ("[1, 2]", "Request body must be a JSON object."),
        ('"text"', "Request body must be a JSON object."),
        ("", "Missing field: address."),
        ('{"scorer_id": 1}', "Missing field: address."),
        ('{"address": 12, "scorer_id": 1}', "Field address must be a string."),
        ('{"address": null, "scorer_id": 1}', "Field address must be a string."),
        (SIGNED % "5", "Field signature must be a string."),
        (SIGNED % '"0x12"', "Invalid signature: expected 65 bytes, got 1."),
        (SIGNED % '"zz"', "Invalid signature: not a hex string."),
        (SIGNED % f'"0x{"00" * 65}"', "Invalid signature: no signer can be recovered"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(client, partner, content, message):
    owner, community, key = partner
    content = content.replace('"scorer_id": 1', f'"scorer_id": {community.id}')
    response = submit(client, key, content)
    assert response.status_code == 400, response.content
    assert response.json()["error"].startswith(message)
    assert nothing_scored()


def test_a_signature_with_an_impossible_v_names_the_problem(client, partner):
    _owner, community, key = partner
    signature = sign_nonce("x")[:-2] + "05"
    response = submit(
        client, key, {"address": ADDRESS, "scorer_id": community.id, "signature": signature, "nonce": "x"}
    )
    invalid_v = "v 5 is invalid, must be one of: 0, 1, 27, 28, 35+"
    expected = {"error": f"Invalid signature: no signer can be recovered from it ({invalid_v})."}
    assert (response.status_code, response.json()) == (400, expected)


def test_the_address_is_checked_before_the_scorer(client, partner):
    _owner, _community, key = partner
    response = submit(client, key, {"address": "0x123", "scorer_id": 999999})
    assert (response.status_code, response.json()) == (400, {"error": "Invalid address."})


def test_a_missing_scorer_id_is_422(client, partner):
    _owner, _community, key = partner
    for body in (
        {"address": ADDRESS},
        {"address": ADDRESS, "scorer_id": ""},
        {"address": ADDRESS, "community": "Deprecated"},
    ):
        response = submit(client, key, body)
        assert (response.status_code, response.json()) == (
            422,
            {"error": "Invalid scorer_id. Please provide a valid scorer_id."},
        )  # fmt: skip


@pytest.mark.parametrize("scorer_id", [999999, None, "not-a-number", -1, "another account's"])
def test_an_unknown_or_foreign_scorer_is_404(client, partner, scorer_id):
    _owner, _community, key = partner
    if scorer_id == "another account's":
        scorer_id = factories.community().id
    response = submit(client, key, {"address": ADDRESS, "scorer_id": scorer_id})
    assert (response.status_code, response.json()) == (404, {"error": "No scorer matches the given criteria."})
    assert nothing_scored()


def test_keys_are_read_from_x_api_key_only_and_revoked_keys_are_refused(client, partner, settings):
    settings.FF_API_ANALYTICS = True
    owner, community, key = partner
    revoked = factories.api_key(owner, revoked=True)
    body = json.dumps({"address": ADDRESS, "scorer_id": community.id})
    for headers in ({"HTTP_AUTHORIZATION": f"Token {key}"}, {"HTTP_X_API_KEY": revoked}, {"HTTP_X_API_KEY": "a.b"}, {}):
        response = client.post(URL, body, content_type="application/json", **headers)
        assert (response.status_code, response.json()) == (401, {"error": "Invalid API Key."})
    assert nothing_scored() and AccountAPIKeyAnalytics.objects.count() == 0


def test_other_methods_are_405_and_answers_carry_cors_headers(client, partner):
    _owner, community, key = partner
    assert client.get(URL, HTTP_X_API_KEY=key).status_code == 405
    response = submit(client, key, {"address": ADDRESS, "scorer_id": community.id})
    assert response["Access-Control-Allow-Origin"] == "*"


# --- analytics rows (decision 18) -------------------------------------------------------------------------------


def test_analytics_rows_carry_the_body_as_sent_and_the_status_sent(client, partner, settings):
    settings.FF_API_ANALYTICS = True
    _owner, community, key = partner
    sent = {"address": ADDRESS, "scorer_id": community.id, "signature": "", "nonce": "n"}
    ok = submit(client, key, sent)
    submit(client, key, {"address": ADDRESS, "scorer_id": 999999})
    submit(client, key, '{"address": ')
    rows = list(AccountAPIKeyAnalytics.objects.order_by("id"))
    assert [(row.status_code, row.error) for row in rows] == [
        (200, None),
        (404, "No scorer matches the given criteria."),
        (400, "Request body is not valid JSON: Expecting value: line 1 column 13 (char 12)"),
    ]
    first, missing, malformed = rows
    assert (first.path, first.path_segments, first.query_params) == (URL, ["registry", "submit-passport"], {})
    assert first.payload == sent and json.loads(first.response) == ok.json()
    assert first.headers["X-Api-Key"] == "***" and key not in json.dumps(first.headers)
    assert missing.payload == {"address": ADDRESS, "scorer_id": 999999}
    assert json.loads(missing.response) == {"error": "No scorer matches the given criteria."}
    assert malformed.payload is None


def test_a_get_without_body_records_an_empty_payload(client, partner, settings):
    settings.FF_API_ANALYTICS = True
    _owner, community, key = partner
    client.get(f"/v2/stamps/{community.id}/score/{ADDRESS}", HTTP_X_API_KEY=key)
    assert AccountAPIKeyAnalytics.objects.get().payload == {}


def test_a_request_carrying_a_nul_character_still_gets_its_row(client, partner, settings):
    settings.FF_API_ANALYTICS = True
    _owner, _community, key = partner
    response = submit(client, key, {"address": ADDRESS, "scorer_id": "1\u0000"})
    assert response.status_code == 400 and "cannot store" in response.json()["error"]
    row = AccountAPIKeyAnalytics.objects.get()
    assert (row.status_code, row.payload) == (400, {"address": ADDRESS, "scorer_id": "1\ufffd"})
