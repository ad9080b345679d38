"""GET /v2/stamps/{scorer_id}/score/{address} — partner scoring with an API key."""

import json

from django.http import HttpRequest, HttpResponse
from ninja import Router

from scorer_fast.auth import PartnerApiKey
from scorer_fast.http import json_text_response
from scorer_fast.openapi import V2_SCORE_DESCRIPTION, V2_SCORE_SUMMARY
from scorer_fast.schemas import ErrorOut, ScoreOut
from scorer_fast.services import use_cases
from scorer_fast.services.analytics import ApiUsage, with_api_usage
from scorer_fast.services.rate_limits import enforce_rate_limit

router = Router(tags=["v2"], auth=PartnerApiKey())


@router.get(
    "/stamps/{scorer_id}/score/{address}",
    response={200: ScoreOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 429: ErrorOut},
    summary=V2_SCORE_SUMMARY,
    description=V2_SCORE_DESCRIPTION,
)
def score_address(request: HttpRequest, scorer_id: str, address: str) -> HttpResponse:
    # The body is serialized once, for the response and the analytics row alike; ScoreOut documents it (the score
    # dict is built in that shape by domain/formats.py, so ninja's validation would only repeat it).
    principal = request.auth

    def operation(_usage: ApiUsage) -> str:
        enforce_rate_limit(request, principal)
        return json.dumps(use_cases.v2_score(principal=principal, scorer_ref=scorer_id, raw_address=address))

    return json_text_response(with_api_usage(request, principal, operation))
