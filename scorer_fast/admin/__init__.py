"""The support admin: address-centric, read-only but for the rescore and undelete actions, never showing a key
hash or a proof. See docs/decisions.md ("Admin")."""

from django.contrib import admin as _admin

from scorer_fast.admin import accounts, scores, stamps, users  # noqa: F401  (registers the model admins)

_admin.site.site_header = "scorer_fast support admin"
_admin.site.site_title = "scorer_fast admin"
_admin.site.site_url = None  # "/" is the JSON API, not a site
