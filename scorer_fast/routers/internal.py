"""/internal/score/v2/{scorer_id}/{address} — internal scoring without a partner key."""

from django.http import HttpRequest
from ninja import Router

from scorer_fast.schemas import DetailOut, ScoreOut
from scorer_fast.services import use_cases

router = Router(tags=["internal"])


@router.get("/score/v2/{scorer_id}/{address}", response={200: ScoreOut, 400: DetailOut, 404: DetailOut, 500: DetailOut})
def score_address(request: HttpRequest, scorer_id: int, address: str):
    return use_cases.internal_score(scorer_id=scorer_id, raw_address=address)
