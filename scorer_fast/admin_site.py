"""The support admin's site: an index led by the task (an address box, then the pages support uses, the rest
grouped below) and the address page it leads to. Installed as Django's default site (scorer_fast/apps.py); outside
the scorer_fast.admin package, whose import registers the model admins on this site."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path

# (heading, model names in the order shown): the first group is what support opens; every registered model not
# named here lands in the last group, so nothing is hidden.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What support uses", ("score", "ceramiccache", "event", "accountapikey", "community")),
    ("Behind a score", ("passport", "stamp", "hashscorerlink", "revocation", "revocationlist")),
    (
        "Partners and their scorers",
        (
            "account",
            "accountapikeyanalytics",
            "weightedscorer",
            "binaryweightedscorer",
            "scorer",
            "customization",
            "allowlist",
            "addresslist",
            "addresslistmember",
            "customplatform",
            "customcredentialruleset",
            "customcredential",
            "walletgroupcommunityclaim",
        ),
    ),
    (
        "Human points",
        ("humanpoints", "humanpointscommunityqualifiedusers", "humanpointsmultiplier", "humanpointsconfig"),
    ),
)
OTHER_GROUP = "Staff logins and everything else"


class SupportAdminSite(admin.AdminSite):
    site_header = "scorer_fast support admin · all times UTC"
    site_title = "scorer_fast admin"
    index_title = "Find an address"
    site_url = None  # "/" is the JSON API, not a site
    index_template = "admin/scorer_fast/index.html"
    enable_nav_sidebar = False  # the index is the map; the sidebar would take a quarter of a 1280 px screen

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from scorer_fast.admin.address import address_view  # the model admins load after the site exists

        return [path("address/", self.admin_view(address_view), name="address"), *super().get_urls()]

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        """The index and the sidebar: GROUPS in order instead of one alphabetical block per Django app."""
        if app_label is not None:
            return super().get_app_list(request, app_label)
        models = {
            entry["object_name"].lower(): {
                **entry,
                "description": getattr(self._registry[entry["model"]], "list_description", ""),
            }
            for app in self._build_app_dict(request).values()
            for entry in app["models"]
        }
        groups = []
        for heading, names in GROUPS:
            entries = [models.pop(name) for name in names if name in models]
            if entries:
                groups.append(_group(heading, entries))
        if models:
            groups.append(_group(OTHER_GROUP, sorted(models.values(), key=lambda entry: entry["name"])))
        return groups

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        return super().index(request, {"subtitle": None, **(extra_context or {})})


def _group(heading: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    # app_url empty: a group is not a Django app, so its heading links nowhere.
    return {"name": heading, "app_label": "scorer_fast", "app_url": "", "has_module_perms": True, "models": entries}
