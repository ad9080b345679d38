"""The ceramic cache (the stamps users hold), with the "Undelete selected stamps" action, and revocations."""

from datetime import UTC, datetime

from django.contrib import admin, messages
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from scorer_fast import models
from scorer_fast.admin.base import (
    AddressSearchAdmin,
    ChoicesFilter,
    ConditionFilter,
    ProviderFilter,
    ReadOnlyAdmin,
    can_rescore,
    collapsed_json,
    credential_facts,
    facts_table,
    redacted_credential,
    utc_date,
)
from scorer_fast.db import scores
from scorer_fast.services.stamps import SOURCE_APP_EMBED, SOURCE_APP_PASSPORT

MAX_UNDELETE_SELECTION = 500
SOURCE_APPS = {SOURCE_APP_PASSPORT: "Passport app", SOURCE_APP_EMBED: "Embed widget"}
STAMP_TYPES = {1: "V1", 2: "V2 (never used)"}


def stamp_state(row: models.CeramicCache) -> str:
    return f"deleted on {utc_date(row.deleted_at)}" if row.deleted_at else "live"


class DeletedFilter(ConditionFilter):
    title = "state"
    parameter_name = "state"
    conditions = {"live": ("Live", Q(deleted_at__isnull=True)), "deleted": ("Deleted", Q(deleted_at__isnull=False))}


class SourceAppFilter(ChoicesFilter):
    title = "source app"
    parameter_name = "source_app"
    field = "source_app"
    choices_list = tuple((str(code), words) for code, words in SOURCE_APPS.items())


@admin.register(models.CeramicCache)
class CeramicCacheAdmin(AddressSearchAdmin):
    list_display = (
        "id",
        "address",
        "provider",
        "state",
        "source",
        "issuance_date",
        "expiration_date",
        "updated_at",
    )
    list_description = (
        "Every stamp an address holds or held (the ceramic cache): live ones, and deleted ones with their deletion "
        "date. A score counts only the live, valid ones; the address page and the score page say which."
    )
    list_filter = (DeletedFilter, SourceAppFilter, ProviderFilter)
    search_help_text = (
        "Search by address (full or prefix, not case-sensitive), or by an exact proof value or ComposeDB stream id."
    )
    fieldsets = (
        (None, {"fields": ("stamp_facts", "address", "state", "source", "stamp_format", "created_at", "updated_at")}),
        ("The stored credential", {"fields": ("stamp_json",)}),
    )
    readonly_fields = ("stamp_facts", "state", "source", "stamp_format", "stamp_json")
    actions = ("undelete_stamps",)

    def other_search(self, term: str) -> Q | None:
        return Q(proof_value=term) | Q(compose_db_stream_id=term)

    @admin.display(description="state")
    def state(self, obj: models.CeramicCache) -> str:
        return stamp_state(obj)

    @admin.display(description="written by")
    def source(self, obj: models.CeramicCache) -> str:
        app = SOURCE_APPS.get(obj.source_app, "unknown") if obj.source_app is not None else "unknown"
        return f"{app}, for community {obj.source_scorer_id}" if obj.source_scorer_id else app

    @admin.display(description="stamp format")
    def stamp_format(self, obj: models.CeramicCache) -> str:
        return STAMP_TYPES.get(obj.type, str(obj.type))

    @admin.display(description="stamp")
    def stamp_facts(self, obj: models.CeramicCache) -> str:
        return facts_table(credential_facts(obj.stamp))

    @admin.display(description="raw credential")
    def stamp_json(self, obj: models.CeramicCache) -> str:
        return collapsed_json("Show the raw JSON (proof hidden)", redacted_credential(obj.stamp))

    def has_rescore_individual_score_permission(self, request: HttpRequest) -> bool:
        return can_rescore(request)

    @admin.action(description="Undelete selected stamps", permissions=["rescore_individual_score"])
    def undelete_stamps(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Clear deleted_at (and bump updated_at), one transaction per stamp under the address's lock, so an API
        write to the same address waits. A stamp whose provider has a live row again stays deleted."""
        selected = list(queryset.order_by("pk")[: MAX_UNDELETE_SELECTION + 1])
        if len(selected) > MAX_UNDELETE_SELECTION:
            self.message_user(
                request, f"Select at most {MAX_UNDELETE_SELECTION} stamps; nothing was undeleted.", messages.ERROR
            )
            return
        undeleted, failed = [], []
        for row in selected:
            problem = _undelete(row)
            if problem:
                failed.append(f"{row.pk} ({problem})")
            else:
                undeleted.append(row.pk)
                self.log_change(request, row, "Undeleted the stamp (admin action).")
        if undeleted:
            self.message_user(
                request,
                f"Undeleted {len(undeleted)} stamp(s): {undeleted}. Recalculate the score for them to count.",
                messages.SUCCESS,
            )
        if failed:
            self.message_user(request, f"Could not undelete: {', '.join(failed)}", messages.ERROR)


def _undelete(row: models.CeramicCache) -> str | None:
    if row.deleted_at is None:
        return "not deleted"
    if not row.address:
        return "no address"
    try:
        with transaction.atomic():
            scores.address_lock(row.address)
            changed = models.CeramicCache.objects.filter(pk=row.pk, deleted_at__isnull=False).update(
                deleted_at=None, updated_at=datetime.now(UTC)
            )
    except IntegrityError:
        return "a live stamp for this provider exists"
    return None if changed else "not deleted"


@admin.register(models.Revocation)
class RevocationAdmin(ReadOnlyAdmin):
    list_description = "Stamps revoked by their proof value: a revoked stamp never counts."
    list_display = ("id", "proof_value", "ceramic_cache_id", "revocation_list")
    list_select_related = ("revocation_list",)
    search_fields = ("proof_value",)
    search_help_text = "Search by an exact proof value."

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        return (queryset.filter(proof_value=term) if term else queryset), False


@admin.register(models.RevocationList)
class RevocationListAdmin(ReadOnlyAdmin):
    list_description = "The lists revocations were imported from."
    list_display = ("id", "name", "description")
