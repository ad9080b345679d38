"""/ceramic-cache/... — the Passport app's routes, authenticated by the SIWE JWT."""

from django.http import HttpRequest
from ninja import Router, Status

from scorer_fast.auth import PassportJwt
from scorer_fast.domain.addresses import normalize_address
from scorer_fast.errors import Unauthorized
from scorer_fast.schemas import (
    CacheStampIn,
    DeleteStampIn,
    ErrorOut,
    ScoreOut,
    ScorePostIn,
    StampsOut,
    StampsWithScoreOut,
)
from scorer_fast.services import use_cases
from scorer_fast.services.stamps import SubmittedStamp

router = Router(tags=["ceramic-cache"], auth=PassportJwt())
_ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 413: ErrorOut, 422: ErrorOut}


def _items(payload: list[CacheStampIn]) -> list[SubmittedStamp]:
    return [SubmittedStamp(item.provider, item.stamp) for item in payload]


def _own_address(request: HttpRequest, path_address: str) -> str:
    if normalize_address(path_address) != request.auth:
        raise Unauthorized("The address does not match the token's address.")
    return request.auth


@router.post("/stamps/bulk", response={201: StampsWithScoreOut, **_ERRORS})
def add_stamps(request: HttpRequest, payload: list[CacheStampIn]):
    return Status(201, use_cases.ceramic_add_stamps(address=request.auth, items=_items(payload)))


@router.patch("/stamps/bulk", response={200: StampsWithScoreOut, **_ERRORS})
def patch_stamps(request: HttpRequest, payload: list[CacheStampIn]):
    return use_cases.ceramic_patch_stamps(address=request.auth, items=_items(payload))


@router.delete("/stamps/bulk", response={200: StampsWithScoreOut, **_ERRORS})
def delete_stamps(request: HttpRequest, payload: list[DeleteStampIn]):
    return use_cases.ceramic_delete_stamps(address=request.auth, providers=[item.provider for item in payload])


@router.get("/score/{address}", response={200: ScoreOut, **_ERRORS})
def get_score(request: HttpRequest, address: str, alternate_scorer_id: int | None = None):
    return use_cases.ceramic_score(
        address=_own_address(request, address), alternate_scorer_id=alternate_scorer_id, use_stored=True
    )


@router.post("/score/{address}", response={200: ScoreOut, **_ERRORS})
def post_score(request: HttpRequest, address: str, payload: ScorePostIn | None = None):
    return use_cases.ceramic_score(
        address=_own_address(request, address),
        alternate_scorer_id=payload.alternate_scorer_id if payload else None,
        use_stored=False,
    )


@router.get("/stamp", auth=None, response={200: StampsOut, 400: ErrorOut})
def get_stamps(request: HttpRequest, address: str):
    return use_cases.ceramic_stamps(raw_address=address)


@router.get("/weights", auth=None, response={200: dict, 500: ErrorOut})
def weights(request: HttpRequest):
    return use_cases.scorer_weights(None)
