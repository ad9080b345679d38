"""POST /registry/submit-passport — the v1 partner route (API key in X-API-Key), rate limited per key."""

from django.http import HttpRequest
from ninja import Router

from scorer_fast.auth import PartnerXApiKey
from scorer_fast.openapi import SUBMIT_PASSPORT_DESCRIPTION
from scorer_fast.schemas import DetailedScoreOut, ErrorOut, SubmitPassportIn
from scorer_fast.services import submissions
from scorer_fast.services.analytics import with_api_usage
from scorer_fast.services.rate_limits import enforce_rate_limit

router = Router(tags=["registry"], auth=PartnerXApiKey())
_BODY_DOC = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": SubmitPassportIn.model_json_schema()}}}
}


@router.post(
    "/submit-passport",
    response={200: DetailedScoreOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut},
    openapi_extra=_BODY_DOC,
    summary="Score an address (v1)",
    description=SUBMIT_PASSPORT_DESCRIPTION,
)
def submit_passport(request: HttpRequest):
    principal = request.auth

    def operation(usage):
        enforce_rate_limit(request, principal)  # before the body is read: every authenticated request counts
        return submissions.submit_passport(principal=principal, raw_body=request.body, usage=usage)

    return with_api_usage(request, principal, operation)
