"""What every admin page shares: read-only by default, index-friendly searches, a capped count, filters that
never scan a table for their choices, and permissions that also honour the original's grants."""

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst

RESCORE_PERMISSIONS = ("registry.rescore_individual_score", "scorer_fast.rescore_individual_score")
FULL_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
ADDRESS_SEARCH_HELP = (
    "Search by address: the full address (exact), or its first characters (prefix). Not case-sensitive."
)


def utc_date(value: datetime | str | None) -> str:
    """The admin's one date format (scorer_fast/formats), in UTC; a credential's ISO string is shown the same way."""
    if isinstance(value, str):
        try:
            return utc_date(datetime.fromisoformat(value))
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return "-" if value is None else str(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return formats.date_format(timezone.localtime(value, UTC), "DATETIME_FORMAT")


# registry_event.action: the codes the original writes, as a support person reads them.
EVENT_ACTION_WORDS = {
    "SCU": "score updated",
    "LDP": "stamp de-duplicated",
    "FDP": "stamp de-duplicated (old first-in rule)",
    "TLS": "Trusta Lab score received",
}
EVENT_ACTIONS = tuple(sorted(EVENT_ACTION_WORDS))

MAX_TYPED_VALUE = 200  # longer than any address, nullifier hash, provider or name


def shown(value: str) -> str:
    """A typed value quoted back in a message: printable and short."""
    printable = "".join(char if char.isprintable() else "\ufffd" for char in value)
    return printable if len(printable) <= 40 else printable[:40] + "…"


def unmatchable(value: str) -> str | None:
    """Why no row can hold this typed value (PostgreSQL text cannot hold a NUL), else None."""
    if "\x00" in value:
        return "holds a NUL character"
    if len(value) > MAX_TYPED_VALUE:
        return f"is longer than {MAX_TYPED_VALUE} characters"
    return None


def no_rows_for(request: HttpRequest, queryset: QuerySet, title: str, value: str, why: str) -> QuerySet:
    messages.warning(request, f"The {title} “{shown(value)}” {why}: no rows match.")
    return queryset.none()


def address_q(field: str, term: str) -> Q:
    """Exact match on the lower-cased address, else a prefix: both use the btree (varchar_pattern_ops) indexes,
    where `icontains` would scan the whole table."""
    value = term.strip().lower()
    return Q(**{field: value}) if FULL_ADDRESS.match(value) else Q(**{f"{field}__startswith": value})


class CappedCountPaginator(Paginator):
    """Counts at most CAP + 1 rows (`SELECT COUNT(*) FROM (... LIMIT 10001)`): a COUNT(*) over millions of rows
    takes seconds. The page header says "more than 10000"; narrow the list with a search or a filter."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.CAP


class ValueFilter(admin.SimpleListFilter):
    """A filter typed into a box (e.g. a community id) instead of a sidebar listing every community."""

    template = "admin/scorer_fast/value_filter.html"
    field = ""  # the lookup the typed value filters on

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return []

    def has_output(self) -> bool:
        return True

    def clean(self, value: str) -> Any:
        return value.strip()

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        why = unmatchable(value)
        cleaned = None if why else self.clean(value)
        if cleaned is None:
            return no_rows_for(request, queryset, self.title, value, why or "is not a valid value")
        return queryset.filter(**{self.field: cleaned})

    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:
        kept = [
            (name, value)
            for name, values in changelist.params.items()
            if name not in (self.parameter_name, "p")
            for value in (values if isinstance(values, list) else [values])
        ]
        yield {
            "parameter_name": self.parameter_name,
            "value": self.value() or "",
            "kept_params": kept,
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
        }


class CommunityFilter(ValueFilter):
    title = "community id"
    parameter_name = "community"
    field = "community_id"

    def clean(self, value: str) -> int | None:
        value = value.strip()
        return int(value) if value.isascii() and value.isdigit() else None


class ConditionFilter(admin.SimpleListFilter):
    """Fixed choices, each one condition: value → (label, Q)."""

    conditions: dict[str, tuple[str, Q]] = {}

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(value, label) for value, (label, _condition) in self.conditions.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        chosen = self.conditions.get(value)
        if chosen is None:
            return no_rows_for(request, queryset, self.title, value, "is not one of this filter's choices")
        return queryset.filter(chosen[1])


class ProviderFilter(ValueFilter):
    title = "provider (exact)"
    parameter_name = "provider"
    field = "provider"


class ChoicesFilter(admin.SimpleListFilter):
    """Fixed choices: Django's default filter on a plain column runs SELECT DISTINCT over the whole table."""

    choices_list: tuple[tuple[str, str], ...] = ()
    field = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(self.choices_list)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        if value not in {str(choice) for choice, _label in self.lookup_choices}:
            return no_rows_for(request, queryset, self.title, value, "is not one of this filter's choices")
        return queryset.filter(**{self.field: value})


def original_permission(model: type[Model], action: str) -> str:
    """The original's permission for the same table, e.g. registry_score → `registry.view_score`."""
    model_name = model._meta.model_name
    table = model._meta.db_table
    app_label = table[: -len(model_name) - 1] if table.endswith(f"_{model_name}") else model._meta.app_label
    return f"{app_label}.{action}_{model_name}"


def admin_link(obj: Model | None, text: Any = None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:scorer_fast_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj if text is None else text)


def changelist_link(model_name: str, text: Any, **params: Any) -> str:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return format_html('<a href="{}?{}">{}</a>', reverse(f"admin:scorer_fast_{model_name}_changelist"), query, text)


INVALID_SELECTION = "The selection holds an id that is not one of this table's; nothing was done."


class SafeChangeList(ChangeList):
    """A search term Django's search form refuses (a NUL) lists no rows, not every row (Django drops the term and
    lists the whole table under its error message)."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        queryset = super().get_queryset(request, exclude_parameters)
        search_form = self.search_form_class(request.GET)
        return queryset if search_form.is_valid() else queryset.none()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nothing is added, edited or deleted here: writes go through the scoring service (the actions)."""

    list_description = ""  # what the list holds, in a sentence: said on the list and on the index
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per filter choice
    paginator = CappedCountPaginator
    ordering = ("-pk",)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SafeChangeList

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """Django answers a parameter it cannot apply (an unknown filter, a bad page) with `?e=1` and a page titled
        "Database error": say what happened and show the list instead."""
        if ERROR_FLAG in request.GET:
            self.message_user(
                request,
                "A filter or page number in the link was not understood: showing the whole list.",
                messages.WARNING,
            )
            return HttpResponseRedirect(request.path)
        title = capfirst(self.model._meta.verbose_name_plural)  # not Django's "Select … to view"
        context = {"title": title, "list_description": self.list_description, **(extra_context or {})}
        return super().changelist_view(request, context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        """scorer_fast's own grant, or the one support staff already hold on the original's admin."""
        return (
            super().has_view_permission(request, obj)
            or request.user.has_perm(original_permission(self.model, "view"))
            or request.user.has_perm(original_permission(self.model, "change"))
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponseBase | None:
        """Selected ids come from the form: one that is not a key of this table (`abc` for an integer key, a NUL)
        is refused with a message; Django would raise while the action reads the rows (a 500)."""
        key = self.model._meta.pk
        assert key is not None
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                if "\x00" in value:
                    raise ValidationError("NUL")
                key.to_python(value)
        except ValidationError:
            self.message_user(request, INVALID_SELECTION, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        """No row has a NUL in its key (PostgreSQL text cannot hold one): "not found", not a DataError's 500."""
        if "\x00" in object_id:
            return None
        return super().get_object(request, object_id, from_field)


class AddressSearchAdmin(ReadOnlyAdmin):
    """`address_field` searched exactly (full address) or by prefix, so no table scan. A term that does not start
    with 0x may mean something else on some pages (`other_search`)."""

    address_field = "address"
    search_fields = ("address",)  # shows the search box; the lookup itself is get_search_results
    search_help_text = ADDRESS_SEARCH_HELP

    def other_search(self, term: str) -> Q | None:
        return None

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        other = None if term.lower().startswith("0x") else self.other_search(term)
        return queryset.filter(other if other is not None else address_q(self.address_field, term)), False


def can_rescore(request: HttpRequest) -> bool:
    """The original's permission (already granted to support staff), or scorer_fast's own on a fresh database.
    It guards both writing actions (rescore, undelete), as in the original."""
    return any(request.user.has_perm(permission) for permission in RESCORE_PERMISSIONS)


def pretty_json(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False))


def collapsed_json(summary: str, value: Any) -> str:
    """Raw JSON below the summary a person reads, closed until asked for."""
    return format_html("<details><summary>{}</summary>{}</details>", summary, pretty_json(value))


def credential_facts(credential: Any) -> list[tuple[str, str]]:
    """What a person asks of a stamp's credential first: provider, issuer, issued, expires, nullifiers."""
    credential = credential if isinstance(credential, dict) else {}
    subject = credential.get("credentialSubject")
    subject = subject if isinstance(subject, dict) else {}
    nullifiers = subject.get("nullifiers") or ([subject["hash"]] if subject.get("hash") else [])
    return [
        ("provider", str(subject.get("provider") or "-")),
        ("issuer", str(credential.get("issuer") or "-")),
        ("issued", utc_date(credential.get("issuanceDate"))),
        ("expires", utc_date(credential.get("expirationDate"))),
        ("nullifiers", ", ".join(str(nullifier) for nullifier in nullifiers) or "-"),
    ]


def facts_table(facts: list[tuple[str, str]]) -> str:
    rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", facts)
    return format_html('<table class="facts">{}</table>', rows)


def redacted_credential(credential: Any) -> Any:
    """Proofs are not shown (the project never logs or shows them); the rest of the credential is."""
    if not isinstance(credential, dict) or not isinstance(credential.get("proof"), dict):
        return credential
    proof = {
        key: (f"{value[:8]}… (hidden)" if key in ("proofValue", "jws") and isinstance(value, str) else value)
        for key, value in credential["proof"].items()
    }
    return {**credential, "proof": proof}
