"""The support admin: address-centric, read-only but for the rescore and undelete actions, never showing a key
hash or a proof. Its site (index, address page) is scorer_fast/admin_site.py. See docs/decisions.md ("Admin")."""

from scorer_fast.admin import accounts, scores, stamps, users  # noqa: F401  (registers the model admins)
