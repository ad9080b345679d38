"""/internal/embed/... — the embed widget, behind the private load balancer."""

from django.http import HttpRequest
from ninja import Router

from scorer_fast.auth import PartnerApiKey
from scorer_fast.schemas import AddStampsIn, DetailOut, EmbedRateLimitOut, StampsWithScoreOut
from scorer_fast.services import use_cases

router = Router(tags=["embed"])
_ERRORS = {400: DetailOut, 401: DetailOut, 404: DetailOut, 413: DetailOut, 422: DetailOut}


@router.get("/validate-api-key", auth=PartnerApiKey(), response={200: EmbedRateLimitOut, 401: DetailOut})
def validate_api_key(request: HttpRequest):
    return {"embed_rate_limit": request.auth.embed_rate_limit}


@router.post("/stamps/{address}", response={200: StampsWithScoreOut, **_ERRORS})
def add_stamps(request: HttpRequest, address: str, payload: AddStampsIn):
    return use_cases.embed_add_stamps(raw_address=address, scorer_id=payload.scorer_id, credentials=payload.stamps)


@router.get("/score/{scorer_id}/{address}", response={200: StampsWithScoreOut, **_ERRORS})
def get_score(request: HttpRequest, scorer_id: int, address: str):
    return use_cases.embed_score(scorer_id=scorer_id, raw_address=address)


@router.get("/weights", response={200: dict[str, float], 500: DetailOut})
def weights(request: HttpRequest, community_id: int | None = None):
    """Deprecated; kept because the embed widget still calls it. Values are coerced to floats, as before."""
    return use_cases.scorer_weights(community_id)
