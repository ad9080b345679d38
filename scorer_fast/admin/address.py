"""The address page the index's search box opens: the address's scores (one per community, with the verdict),
the stamps it holds and its latest events, each linked to the page that says more. A handful of indexed queries."""

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from scorer_fast import models
from scorer_fast.admin.base import EVENT_ACTIONS, FULL_ADDRESS, shown, unmatchable, utc_date
from scorer_fast.admin.score_page import verdict
from scorer_fast.admin.scores import event_action, event_summary
from scorer_fast.admin.stamps import stamp_state

SHOWN_EVENTS = 20
ADDRESS_HELP = "The full address: 0x followed by 40 hexadecimal characters (not case-sensitive)."


def address_view(request: HttpRequest) -> TemplateResponse:
    typed = request.GET.get("address", "")
    address = typed.strip().lower()
    context = {**admin.site.each_context(request), "title": "Find an address", "typed": typed, "help": ADDRESS_HELP}
    if typed.strip() and (unmatchable(typed) or not FULL_ADDRESS.match(address)):
        context["problem"] = f"“{shown(typed)}” is not a full address. {ADDRESS_HELP}"
    elif typed.strip():
        context.update(title=f"Address {address}", address=address, **_address_rows(address))
    return TemplateResponse(request, "admin/scorer_fast/address.html", context)


def _address_rows(address: str) -> dict[str, object]:
    scores = models.Score.objects.filter(passport__address=address).select_related("passport__community")
    stamps = models.CeramicCache.objects.filter(address=address).order_by("deleted_at", "provider", "-id")
    events = (
        models.Event.objects.filter(action__in=EVENT_ACTIONS, address=address)
        .select_related("community")
        .order_by("-created_at")[:SHOWN_EVENTS]
    )
    return {
        "scores": [
            {
                "pk": score.pk,
                "community": score.passport.community,
                "verdict": verdict(score),
                "scored": utc_date(score.last_score_timestamp),
            }
            for score in scores.order_by("passport__community_id")
        ],
        "stamps": [
            {
                "pk": stamp.pk,
                "provider": stamp.provider,
                "state": stamp_state(stamp),
                "issued": utc_date(stamp.issuance_date or (stamp.stamp or {}).get("issuanceDate")),
                "expires": utc_date(stamp.expiration_date or (stamp.stamp or {}).get("expirationDate")),
            }
            for stamp in stamps[:200]
        ],
        "events": [
            {
                "pk": event.pk,
                "what": event_action(event.action),
                "community": event.community,
                "when": utc_date(event.created_at),
                "details": event_summary(event),
            }
            for event in events
        ],
        "shown_events": SHOWN_EVENTS,
    }
