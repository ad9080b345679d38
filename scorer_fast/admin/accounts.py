"""Accounts, API keys (never their hashes), communities and their scorers, partner configuration, human points."""

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from scorer_fast import models
from scorer_fast.admin.base import (
    AddressSearchAdmin,
    ChoicesFilter,
    CommunityFilter,
    ConditionFilter,
    ReadOnlyAdmin,
    admin_link,
    changelist_link,
    pretty_json,
    utc_date,
)
from scorer_fast.services.analytics import masked_headers


@admin.register(models.Account)
class AccountAdmin(AddressSearchAdmin):
    list_description = "Partner accounts (one per wallet address of the developer portal), with their scorers and keys."
    list_display = ("id", "address", "user", "communities", "api_keys")
    list_select_related = ("user",)
    search_help_text = "Search by address (full or prefix, not case-sensitive) or by the user's exact username."

    def other_search(self, term: str) -> Q | None:
        return Q(user__username=term)

    @admin.display(description="communities")
    def communities(self, obj: models.Account) -> str:
        return changelist_link("community", "communities", account=obj.pk)

    @admin.display(description="API keys")
    def api_keys(self, obj: models.Account) -> str:
        return changelist_link("accountapikey", "API keys", account=obj.pk)


class AccountFilter(CommunityFilter):
    title = "account id"
    parameter_name = "account"
    field = "account_id"


class RevokedFilter(ConditionFilter):
    title = "revoked"
    parameter_name = "revoked"
    conditions = {"1": ("Yes", Q(revoked=True)), "0": ("No", Q(revoked=False))}


KEY_SEARCH_HELP = (
    "API keys are found by their prefix, the characters before the dot (the only part of a key kept in clear). "
    "Pasting a whole key is safe: only its prefix is sent and searched. Also finds a key name or account address."
)
KEY_HAS_NO_PAGE = (
    "An API key has no page of its own: its id holds the key's hash. Everything about a key is in the API keys list "
    "(search it by the key's prefix)."
)


def key_search_term(term: str) -> str:
    """A key is `<prefix>.<secret>`: everything from the first dot on is dropped before it reaches a URL or a page."""
    return term.partition(".")[0].strip()


@admin.register(models.AccountAPIKey)
class AccountAPIKeyAdmin(AddressSearchAdmin):
    """The primary key is `<prefix>.<PBKDF2 hash>`: rows get no link, no detail page and no action checkbox (each
    would put the hash into the page and into the URL that request logs record). The list shows everything else,
    in few enough columns for a 1280 px screen. Its search form posts (see `search_view`)."""

    list_description = "Partner API keys, newest first. A key's secret is never stored or shown, only its prefix."
    list_display = ("prefix", "name", "account_link", "rate_limits", "permissions", "state", "created_on")
    list_display_links = None
    list_select_related = ("account",)
    list_filter = (RevokedFilter, AccountFilter)
    actions = None
    ordering = ("-created",)
    address_field = "account__address"
    search_help_text = KEY_SEARCH_HELP

    def get_urls(self) -> list[URLPattern]:
        search = path("search/", self.admin_site.admin_view(self.search_view), name="scorer_fast_accountapikey_search")
        return [search, *super().get_urls()]

    def search_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """The search box posts here; the redirect carries only the prefix, so the URL (and every log of it) never
        holds the secret part of a pasted key."""
        params = {name: value for name, value in request.POST.items() if name not in ("csrfmiddlewaretoken", "q")}
        return self._search_redirect(request, request.POST.get("q", ""), params)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        term = request.GET.get("q", "")
        if "." in term:  # a key typed into the URL by hand: show the page for its prefix only
            params = {name: value for name, value in request.GET.items() if name != "q"}
            return self._search_redirect(request, term, params)
        return super().changelist_view(request, extra_context)

    def _search_redirect(self, request: HttpRequest, term: str, params: dict[str, str]) -> HttpResponseRedirect:
        prefix = key_search_term(term)
        if prefix != term.strip():
            self.message_user(request, "Searched by the key's prefix only: the rest of the key was dropped.")
        query = urlencode({**params, **({"q": prefix} if prefix else {})})
        url = reverse("admin:scorer_fast_accountapikey_changelist")
        return HttpResponseRedirect(f"{url}?{query}" if query else url)

    def other_search(self, term: str) -> Q | None:
        # API keys are a small table (one row per partner key): a name contains-search is cheap here.
        prefix = key_search_term(term)
        return Q(prefix__startswith=prefix) | Q(name__icontains=prefix)

    def has_view_permission(self, request: HttpRequest, obj: models.AccountAPIKey | None = None) -> bool:
        return obj is None and super().has_view_permission(request)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        raise PermissionDenied(KEY_HAS_NO_PAGE)  # an admin-styled 403 that says where to look instead

    @admin.display(description="account", ordering="account__address")
    def account_link(self, obj: models.AccountAPIKey) -> str:
        address = obj.account.address or ""  # shortened to fit the row; the account's page has it in full
        return admin_link(obj.account, f"{address[:8]}…{address[-6:]}" if len(address) > 16 else address)

    @admin.display(description="rate limits")
    def rate_limits(self, obj: models.AccountAPIKey) -> str:
        return format_html(
            "scoring {}<br>analysis {}<br>embed {}",
            obj.rate_limit or "unlimited",
            obj.analysis_rate_limit or "unlimited",
            obj.embed_rate_limit or "unlimited",
        )

    @admin.display(description="permissions")
    def permissions(self, obj: models.AccountAPIKey) -> str:
        flags = {
            "submit": obj.submit_passports,
            "read": obj.read_scores,
            "create scorers": obj.create_scorers,
            "history": obj.historical_endpoint,
        }
        return ", ".join(name for name, granted in flags.items() if granted) or "-"

    @admin.display(description="state")
    def state(self, obj: models.AccountAPIKey) -> str:
        if obj.revoked:
            return "revoked"
        if obj.expiry_date is None:
            return "active, never expires"
        return f"{'expired' if obj.expiry_date < datetime.now(UTC) else 'active, expires'} {utc_date(obj.expiry_date)}"

    @admin.display(description="created", ordering="created")
    def created_on(self, obj: models.AccountAPIKey) -> str:
        return utc_date(obj.created)


@admin.register(models.AccountAPIKeyAnalytics)
class AccountAPIKeyAnalyticsAdmin(ReadOnlyAdmin):
    """Usage rows. The key shows as its prefix and name (never linked: its primary key holds the hash); secret
    headers are masked on the page even where an older writer stored them."""

    list_description = "One row per partner API request: which key, which route, which answer."
    list_display = ("id", "created_at", "api_key_label", "path", "status_code")
    list_select_related = ("api_key",)
    fields = ("created_at", "api_key_label", "path", "base_path", "status_code", "error", "masked_headers")
    readonly_fields = ("api_key_label", "masked_headers")

    @admin.display(description="API key")
    def api_key_label(self, obj: models.AccountAPIKeyAnalytics) -> str:
        return str(obj.api_key)

    @admin.display(description="headers")
    def masked_headers(self, obj: models.AccountAPIKeyAnalytics) -> str:
        return pretty_json(masked_headers(obj.headers if isinstance(obj.headers, dict) else {}))


@admin.register(models.Community)
class CommunityAdmin(ReadOnlyAdmin):
    list_description = (
        "The partners' scorers (communities): each has its own weights and threshold, and its own scores."
    )
    list_display = (
        "id",
        "name",
        "account_link",
        "scorer_link",
        "rule",
        "external_scorer_id",
        "human_points_program",
        "deleted_at",
        "scores",
    )
    list_select_related = ("account", "scorer")
    list_filter = (AccountFilter,)
    search_fields = ("name",)
    search_help_text = "Search by id, external scorer id (exact), or name (communities are a small table)."
    readonly_fields = ("scorer_settings",)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(external_scorer_id=term) | Q(name__icontains=term)
        if term.isascii() and term.isdigit():
            match |= Q(pk=int(term))
        return queryset.filter(match), False

    @admin.display(description="account", ordering="account__address")
    def account_link(self, obj: models.Community) -> str:
        return admin_link(obj.account, obj.account.address)

    @admin.display(description="scorer")
    def scorer_link(self, obj: models.Community) -> str:
        return admin_link(obj.scorer)

    @admin.display(description="scores")
    def scores(self, obj: models.Community) -> str:
        return changelist_link("score", "scores", community=obj.pk)

    @admin.display(description="scorer weights and threshold")
    def scorer_settings(self, obj: models.Community) -> str:
        child = (
            models.WeightedScorer.objects.filter(pk=obj.scorer_id).first()
            or models.BinaryWeightedScorer.objects.filter(pk=obj.scorer_id).first()
        )
        if child is None:
            return "no weighted scorer row"
        return pretty_json({"type": obj.scorer.type, "threshold": child.threshold, "weights": child.weights})


@admin.register(models.Scorer)
class ScorerAdmin(ReadOnlyAdmin):
    list_description = "Which kind each scorer is (weighted or binary); the weights are in the two lists below."
    list_display = ("id", "type", "exclude_from_weight_updates")


@admin.register(models.WeightedScorer, models.BinaryWeightedScorer)
class WeightedScorerAdmin(ReadOnlyAdmin):
    list_description = "Each scorer's stamp weights and passing threshold."
    list_display = ("scorer_ptr_id", "threshold")
    exclude = ("weights",)
    readonly_fields = ("weights_json",)

    @admin.display(description="weights")
    def weights_json(self, obj: models.WeightedScorer) -> str:
        return pretty_json(obj.weights)


@admin.register(models.Customization)
class CustomizationAdmin(ReadOnlyAdmin):
    list_description = "Partner dashboard customizations (one per partner page)."
    list_display = ("id", "path", "partner_name", "scorer", "show_in_top_nav", "nav_order")
    list_select_related = ("scorer",)


@admin.register(models.AllowList)
class AllowListAdmin(ReadOnlyAdmin):
    list_description = "Address lists that give a customization's scorer an extra stamp weight."
    list_display = ("id", "address_list", "customization", "weight")
    list_select_related = ("address_list", "customization")


@admin.register(models.AddressList)
class AddressListAdmin(ReadOnlyAdmin):
    list_description = "Named lists of addresses, used by allow lists."
    list_display = ("id", "name", "members")

    @admin.display(description="members")
    def members(self, obj: models.AddressList) -> str:
        return changelist_link("addresslistmember", "members", list=obj.pk)


class AddressListFilter(CommunityFilter):
    title = "address list id"
    parameter_name = "list"
    field = "list_id"


@admin.register(models.AddressListMember)
class AddressListMemberAdmin(AddressSearchAdmin):
    list_description = "Which addresses are on which address list."
    list_display = ("address", "list")
    list_select_related = ("list",)
    list_filter = (AddressListFilter,)


PLAIN_LISTS = {
    models.CustomPlatform: "Stamp platforms partners defined for their own credentials.",
    models.CustomCredentialRuleset: "The rules that define partners' custom credentials (never changed once made).",
    models.CustomCredential: "Custom credentials a customization's scorer gives weight to.",
}
for plain, description in PLAIN_LISTS.items():
    admin.site.register(plain, type(f"{plain.__name__}Admin", (ReadOnlyAdmin,), {"list_description": description}))


@admin.register(models.WalletGroupCommunityClaim)
class WalletGroupCommunityClaimAdmin(ReadOnlyAdmin):
    list_description = "Which address of a wallet group holds the group's score in a community."
    list_display = ("id", "group_key", "canonical_address", "community", "claimed_at")
    list_select_related = ("community",)


# --- human points ---------------------------------------------------------------------------------------------------


class PointsActionFilter(ChoicesFilter):
    title = "action"
    parameter_name = "action"
    field = "action"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(action, action) for action in models.HumanPointsConfig.objects.values_list("action", flat=True)]


@admin.register(models.HumanPoints)
class HumanPointsAdmin(AddressSearchAdmin):
    list_description = "Human points each address earned, one row per award."
    list_display = ("id", "address", "action", "provider", "chain_id", "timestamp", "tx_hash")
    sortable_by = ("id", "address", "action", "provider", "chain_id")  # timestamp and tx_hash have no index
    list_filter = (PointsActionFilter,)


@admin.register(models.HumanPointsCommunityQualifiedUsers)
class HumanPointsQualifiedAdmin(AddressSearchAdmin):
    list_description = "Addresses that passed a human-points community's threshold."
    list_display = ("id", "address", "community")
    list_select_related = ("community",)
    list_filter = (CommunityFilter,)


@admin.register(models.HumanPointsMultiplier)
class HumanPointsMultiplierAdmin(AddressSearchAdmin):
    list_description = "Addresses whose human points are multiplied."
    list_display = ("address", "multiplier")
    ordering = ("address",)


@admin.register(models.HumanPointsConfig)
class HumanPointsConfigAdmin(ReadOnlyAdmin):
    list_description = "How many points each human-points action gives."
    list_display = ("action", "points", "active")
    ordering = ("action",)
