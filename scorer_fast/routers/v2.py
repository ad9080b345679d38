"""GET /v2/stamps/{scorer_id}/score/{address} — partner scoring with an API key."""

from django.http import HttpRequest
from ninja import Router

from scorer_fast.auth import PartnerApiKey
from scorer_fast.schemas import ErrorOut, ScoreOut
from scorer_fast.services import use_cases
from scorer_fast.services.analytics import with_api_usage
from scorer_fast.services.rate_limits import enforce_rate_limit

router = Router(tags=["v2"], auth=PartnerApiKey())


@router.get(
    "/stamps/{scorer_id}/score/{address}",
    response={200: ScoreOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 429: ErrorOut},
)
def score_address(request: HttpRequest, scorer_id: str, address: str):
    principal = request.auth

    def operation(_usage):
        enforce_rate_limit(request, principal)
        return use_cases.v2_score(principal=principal, scorer_ref=scorer_id, raw_address=address)

    return with_api_usage(request, principal, operation)
