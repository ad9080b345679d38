"""Read-only admin over the existing tables, for inspection. API key hashes are never shown."""

from django.contrib import admin

from scorer_fast import models


class ReadOnlyAdmin(admin.ModelAdmin):
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) on big tables is slow

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.AccountAPIKey)
class AccountAPIKeyAdmin(ReadOnlyAdmin):
    """The primary key embeds the PBKDF2 hash (`<prefix>.<hash>`), so rows get no links and no detail page."""

    list_display = ("prefix", "name", "account_id", "revoked", "rate_limit", "embed_rate_limit", "created")
    list_display_links = None
    search_fields = ("prefix", "name")

    def has_view_permission(self, request, obj=None):
        return obj is None and super().has_view_permission(request)


@admin.register(models.Community)
class CommunityAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "account_id", "scorer_id", "rule", "external_scorer_id", "human_points_program")
    search_fields = ("name", "external_scorer_id")


@admin.register(models.Passport)
class PassportAdmin(ReadOnlyAdmin):
    list_display = ("id", "address", "community_id")
    search_fields = ("address",)


@admin.register(models.Score)
class ScoreAdmin(ReadOnlyAdmin):
    list_display = ("id", "passport_id", "score", "status", "last_score_timestamp", "expiration_date")
    list_filter = ("status",)
    search_fields = ("passport__address",)


@admin.register(models.CeramicCache)
class CeramicCacheAdmin(ReadOnlyAdmin):
    list_display = ("id", "address", "provider", "source_app", "source_scorer_id", "updated_at", "deleted_at")
    search_fields = ("address", "provider")


@admin.register(models.HashScorerLink)
class HashScorerLinkAdmin(ReadOnlyAdmin):
    list_display = ("id", "hash", "address", "community_id", "expires_at")
    search_fields = ("hash", "address")


@admin.register(models.Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "action", "address", "community_id", "created_at")
    list_filter = ("action",)
    search_fields = ("address",)


for model in (
    models.Account,
    models.AccountAPIKeyAnalytics,
    models.Scorer,
    models.WeightedScorer,
    models.BinaryWeightedScorer,
    models.Stamp,
    models.Revocation,
    models.HumanPoints,
    models.HumanPointsConfig,
    models.HumanPointsMultiplier,
    models.HumanPointsCommunityQualifiedUsers,
    models.Customization,
    models.AllowList,
    models.AddressList,
):
    admin.site.register(model, ReadOnlyAdmin)
