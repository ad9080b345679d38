"""Address-centric pages: scores (with everything behind the number and the rescore action), passports, stamps,
events and hash links. Every list joins what it shows (`list_select_related`) and searches by address only."""

import json
import logging
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from scorer_fast import models
from scorer_fast.admin.base import (
    EVENT_ACTION_WORDS,
    EVENT_ACTIONS,
    FULL_ADDRESS,
    AddressSearchAdmin,
    ChoicesFilter,
    CommunityFilter,
    ConditionFilter,
    ProviderFilter,
    can_rescore,
    changelist_link,
    collapsed_json,
    credential_facts,
    facts_table,
    pretty_json,
    redacted_credential,
    utc_date,
)
from scorer_fast.admin.score_page import plain_number, rescore_result, stamp_lines, verdict
from scorer_fast.errors import ScoreCalculationFailed, ScorerError
from scorer_fast.services import communities, use_cases

logger = logging.getLogger(__name__)

MAX_RESCORE_SELECTION = 100  # each score is a full scoring run inside the admin request
SHOWN_EVENTS = 20
SHOWN_POINTS = 50


def _table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "none"
    head = format_html_join("", "<th>{}</th>", ((header,) for header in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


class PassportCommunityFilter(CommunityFilter):
    field = "passport__community_id"


class ScoreStatusFilter(ChoicesFilter):
    title = "status"
    parameter_name = "status"
    field = "status"
    choices_list = (("DONE", "DONE"), ("ERROR", "ERROR"), ("PROCESSING", "PROCESSING"))


class PassingFilter(ConditionFilter):
    title = "passing"
    parameter_name = "passing"
    conditions = {"yes": ("Yes", Q(score=1)), "no": ("No", Q(score__isnull=True) | ~Q(score=1))}


def _community_cell(community: models.Community | None, model_name: str = "score") -> str:
    """The community, linked to this list filtered by it."""
    if community is None:
        return "-"
    return changelist_link(model_name, community, community=community.pk)


@admin.register(models.Score)
class ScoreAdmin(AddressSearchAdmin):
    list_description = (
        "One score per address and community (scorer), as of its last scoring. Open one to see why it is what it "
        "is, stamp by stamp, and to recalculate it."
    )
    address_field = "passport__address"
    list_display = (
        "address",
        "community",
        "raw_score",
        "passing",
        "status",
        "last_scored",
        "expires",
    )
    list_display_links = ("address",)
    sortable_by = ("status", "last_scored", "expires")  # indexed columns only: a sort must not read the table
    list_select_related = ("passport__community",)
    list_filter = (PassportCommunityFilter, ScoreStatusFilter, PassingFilter)
    actions = ("recalculate_user_score",)
    fieldsets = (
        # The verdict is the page's subtitle; the stamps come right under it, the score's own fields after them.
        ("Why this score: each stamp and its reason", {"fields": ("stamp_breakdown",)}),
        (
            "The score",
            {"fields": ("address", "community", "raw_score", "threshold", "status", "error", "last_scored", "expires")},
        ),
        ("Events of this address in this community (newest first)", {"fields": ("address_events",)}),
        ("Human points of this address", {"fields": ("human_points",)}),
        ("Stored evidence", {"fields": ("evidence_json",)}),
    )

    # --- columns -------------------------------------------------------------------------------------------------

    @admin.display(description="address")
    def address(self, obj: models.Score) -> str:
        return obj.passport.address or "-"

    @admin.display(description="community")
    def community(self, obj: models.Score) -> str:
        return _community_cell(obj.passport.community)

    @admin.display(description="raw score")
    def raw_score(self, obj: models.Score) -> str:
        return plain_number((obj.evidence or {}).get("rawScore"))

    @admin.display(description="threshold")
    def threshold(self, obj: models.Score) -> str:
        return plain_number((obj.evidence or {}).get("threshold"))

    @admin.display(description="passing", boolean=True)
    def passing(self, obj: models.Score) -> bool | None:
        return None if obj.score is None else obj.score == 1

    @admin.display(description="last scored", ordering="last_score_timestamp")
    def last_scored(self, obj: models.Score) -> str:
        return utc_date(obj.last_score_timestamp)

    @admin.display(description="expires", ordering="expiration_date")
    def expires(self, obj: models.Score) -> str:
        return utc_date(obj.expiration_date)

    @admin.display(description="stored evidence")
    def evidence_json(self, obj: models.Score) -> str:
        return collapsed_json(
            "Show the raw JSON", {"evidence": obj.evidence, "stamp_scores": obj.stamp_scores, "stamps": obj.stamps}
        )

    # --- everything behind the number (detail page only) --------------------------------------------------------

    @admin.display(description="stamps")
    def stamp_breakdown(self, obj: models.Score) -> str:
        lines = stamp_lines(obj, _weights(obj.passport.community_id))
        rows = [(line.provider, line.weight, line.contributed, line.expires, line.reason) for line in lines]
        return _table(("stamp (provider)", "weight in this scorer", "contributed", "expires", "why"), rows)

    @admin.display(description="events")
    def address_events(self, obj: models.Score) -> str:
        address, community_id = obj.passport.address or "", obj.passport.community_id
        events = models.Event.objects.filter(
            action__in=EVENT_ACTIONS, address=address, community_id=community_id
        ).order_by("-created_at")[:SHOWN_EVENTS]
        rows = [(event_action(event.action), utc_date(event.created_at), event_summary(event)) for event in events]
        more = changelist_link("event", "all events of this address", q=address, community=community_id or "")
        return format_html("{}<p>{}</p>", _table(("what happened", "when", "details"), rows), more)

    @admin.display(description="human points")
    def human_points(self, obj: models.Score) -> str:
        address = obj.passport.address or ""
        awards = models.HumanPoints.objects.filter(address=address).order_by("-id")[:SHOWN_POINTS]
        rows = [
            (award.action, award.provider, award.chain_id, utc_date(award.timestamp), award.tx_hash) for award in awards
        ]
        qualified = list(
            models.HumanPointsCommunityQualifiedUsers.objects.filter(address=address).values_list(
                "community_id", flat=True
            )
        )
        multiplier = models.HumanPointsMultiplier.objects.filter(address=address).values_list("multiplier", flat=True)
        return format_html(
            "{}<p>Qualified in communities: {}. Multiplier: {}.</p>",
            _table(("action", "provider", "chain", "at", "tx hash"), rows),
            ", ".join(str(community_id) for community_id in qualified) or "none",
            next(iter(multiplier), "none"),
        )

    # --- the page: its title, the verdict under it, the Recalculate button -------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("passport__community")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        score = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if score is not None:
            community = score.passport.community
            context["title"] = f"Score of {score.passport.address} in {community or 'no community'}"
            context["subtitle"] = verdict(score)
            context["can_rescore"] = can_rescore(request)
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[URLPattern]:
        recalculate = path(
            "<path:object_id>/recalculate/",
            self.admin_site.admin_view(self.recalculate_view),
            name="scorer_fast_score_recalculate",
        )
        return [recalculate, *super().get_urls()]

    def recalculate_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        """The page's Recalculate button (POST, CSRF-checked by the admin view): the list action for one score."""
        score = self.get_object(request, object_id)
        if score is None:
            raise Http404
        page = reverse("admin:scorer_fast_score_change", args=[score.pk])
        if request.method != "POST":
            return HttpResponseRedirect(page)
        if not can_rescore(request):
            raise PermissionDenied("Recalculating a score needs the “Can rescore individual scores” permission.")
        communities.forget_all()
        self._rescore_and_report(request, [score], with_address=False)
        return HttpResponseRedirect(page)

    # --- the action --------------------------------------------------------------------------------------------

    def has_rescore_individual_score_permission(self, request: HttpRequest) -> bool:
        return can_rescore(request)

    @admin.action(description="Recalculate user score", permissions=["rescore_individual_score"])
    def recalculate_user_score(self, request: HttpRequest, queryset: QuerySet) -> None:
        """The API's scoring pipeline (re-read the ceramic cache, verify, deduplicate, write score, stamps, links,
        events, points), one durable transaction per score, as GET /internal/score/v2 does."""
        selected = list(queryset.select_related("passport").order_by("pk")[: MAX_RESCORE_SELECTION + 1])
        if len(selected) > MAX_RESCORE_SELECTION:
            self.message_user(
                request,
                f"Select at most {MAX_RESCORE_SELECTION} scores to recalculate at once; nothing was rescored.",
                messages.ERROR,
            )
            return
        communities.forget_all()  # a staff member who just changed a weight rescores with it, not the cached setup
        self._rescore_and_report(request, selected, with_address=True)

    def _rescore_and_report(self, request: HttpRequest, selected: list[models.Score], *, with_address: bool) -> None:
        """One message per score, in words ("score recalculated: 12 → 22, now passes"); failures in one message."""
        failed = []
        for score in selected:
            problem = _rescore(score.passport)
            if problem is not None:
                failed.append(f"{score.passport.address or score.pk} ({problem})")
                continue
            self.log_change(request, score, "Recalculated the score (admin action).")
            after = models.Score.objects.get(pk=score.pk)
            result = rescore_result(score, after)
            level = messages.WARNING if after.status == "ERROR" else messages.SUCCESS
            self.message_user(request, f"{score.passport.address}: {result}" if with_address else result, level)
        if failed:
            self.message_user(request, f"Could not recalculate: {', '.join(failed)}", messages.ERROR)


def _rescore(passport: models.Passport) -> str | None:
    """None when scored (an error-state score is a result, reported separately), else why not."""
    if passport.community_id is None or not passport.address:
        return "the passport has no community or no address"
    try:
        use_cases.internal_score(scorer_id=passport.community_id, raw_address=passport.address)
    except ScoreCalculationFailed:
        return None
    except ScorerError as exc:
        return exc.message
    except DatabaseError as exc:
        logger.exception("admin rescore failed", extra={"community_id": passport.community_id})
        return f"database error: {type(exc).__name__}"
    return None


def _weights(community_id: int | None) -> dict[str, Any]:
    if community_id is None:
        return {}
    try:
        return use_cases.scorer_weights(community_id)
    except ScoreCalculationFailed:
        return {}


def event_action(code: str) -> str:
    return EVENT_ACTION_WORDS.get(code, code)


def event_summary(event: models.Event) -> str:
    data = event.data if isinstance(event.data, dict) else {}
    if event.action == "SCU":
        fields = data.get("fields") or {}
        evidence = fields.get("evidence") or {}
        passed = "passes" if str(fields.get("score")).startswith("1") else "does not pass"
        return f"raw score {plain_number(evidence.get('rawScore'))}, {passed}"
    if event.action in ("LDP", "FDP"):
        return f"{data.get('provider')}: its nullifier is held by another address"
    return json.dumps(data, default=str)[:200]


@admin.register(models.Passport)
class PassportAdmin(AddressSearchAdmin):
    list_description = "One passport per address and community: the row a score hangs on."
    list_display = ("address", "community", "requires_calculation", "score_link")
    sortable_by = ("address",)
    list_select_related = ("community",)
    list_filter = (CommunityFilter,)

    @admin.display(description="community")
    def community(self, obj: models.Passport) -> str:
        return _community_cell(obj.community, "passport")

    @admin.display(description="score")
    def score_link(self, obj: models.Passport) -> str:
        return changelist_link("score", "score", q=obj.address, community=obj.community_id or "")


@admin.register(models.Stamp)
class StampAdmin(AddressSearchAdmin):
    """registry_stamp: the stamps that counted at the last scoring."""

    list_description = (
        "Only the stamps that counted at each address's last scoring (valid, not de-duplicated). An address's "
        "other stamps are under “Stamps held”; the score page says why each one did or did not count."
    )
    address_field = "passport__address"
    list_display = ("id", "address", "community", "provider", "expires")
    sortable_by = ("id", "provider")
    list_select_related = ("passport__community",)
    list_filter = (PassportCommunityFilter, ProviderFilter)
    fields = ("credential_facts", "address", "community", "credential_json")
    readonly_fields = ("credential_facts", "address", "community", "credential_json")

    @admin.display(description="address")
    def address(self, obj: models.Stamp) -> str:
        return obj.passport.address if obj.passport else "-"

    @admin.display(description="community")
    def community(self, obj: models.Stamp) -> str:
        return _community_cell(obj.passport.community if obj.passport else None, "stamp")

    @admin.display(description="expires")
    def expires(self, obj: models.Stamp) -> str:
        return utc_date((obj.credential or {}).get("expirationDate"))

    @admin.display(description="stamp")
    def credential_facts(self, obj: models.Stamp) -> str:
        return facts_table(credential_facts(obj.credential))

    @admin.display(description="raw credential")
    def credential_json(self, obj: models.Stamp) -> str:
        return collapsed_json("Show the raw JSON (proof hidden)", redacted_credential(obj.credential))


class EventActionFilter(ChoicesFilter):
    title = "action"
    parameter_name = "action"
    field = "action"
    choices_list = tuple((action, EVENT_ACTION_WORDS[action]) for action in EVENT_ACTIONS)


@admin.register(models.Event)
class EventAdmin(AddressSearchAdmin):
    """registry_event is indexed on (action, address, community_id, created_at) only: a search probes that index
    once per known action, so it takes the full address (no prefix)."""

    list_description = (
        "What happened to an address in a community: score updates and de-duplicated stamps, newest first."
    )
    list_display = ("id", "what", "address", "community", "created_at")
    sortable_by = ("id",)
    list_select_related = ("community",)
    list_filter = (EventActionFilter, CommunityFilter)
    search_help_text = "Search by the full address (0x followed by 40 hex characters). Not case-sensitive."
    fields = ("what", "address", "community", "created_at", "data_json")
    readonly_fields = ("what", "data_json")

    @admin.display(description="action")
    def what(self, obj: models.Event) -> str:
        return event_action(obj.action)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        address = search_term.strip().lower()
        if not FULL_ADDRESS.match(address):  # a prefix: the index cannot serve it
            self.message_user(request, "Events are searched by the full address.", messages.WARNING)
            return queryset.none(), False
        return queryset.filter(action__in=EVENT_ACTIONS, address=address), False

    @admin.display(description="community")
    def community(self, obj: models.Event) -> str:
        return _community_cell(obj.community, "event")

    @admin.display(description="data")
    def data_json(self, obj: models.Event) -> str:
        return pretty_json(obj.data)


@admin.register(models.HashScorerLink)
class HashScorerLinkAdmin(AddressSearchAdmin):
    list_description = (
        "Which address holds each stamp nullifier in a community, until when. Another address's stamp with the same "
        "nullifier is de-duplicated (does not count) while the claim lasts."
    )
    list_display = ("hash", "address", "community", "expires_at")
    list_select_related = ("community",)
    list_filter = (CommunityFilter,)
    search_help_text = "Search by address (full or prefix, not case-sensitive) or by nullifier hash (full or prefix)."

    def other_search(self, term: str) -> Q | None:
        return Q(hash__startswith=term)

    @admin.display(description="community")
    def community(self, obj: models.HashScorerLink) -> str:
        return _community_cell(obj.community, "hashscorerlink")
