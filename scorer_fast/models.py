"""The existing scorer tables as unmanaged models: plain mappings, no business logic.

Column types, nullability and unique constraints follow the production schema (the original's migrations);
tests/test_schema.py compares them with the real schema. `auth_user` is Django's own `auth.User`, the same table.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

DO_NOTHING = models.DO_NOTHING


class Unmanaged(models.Model):
    class Meta:
        abstract = True
        managed = False
        app_label = "scorer_fast"


class Account(Unmanaged):
    address = models.CharField(max_length=100)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=DO_NOTHING)

    class Meta(Unmanaged.Meta):
        verbose_name = "account"
        verbose_name_plural = "accounts"
        db_table = "account_account"

    def __str__(self) -> str:
        return self.address


class AccountAPIKey(Unmanaged):
    id = models.CharField(max_length=150, primary_key=True)
    prefix = models.CharField(max_length=8, unique=True)
    hashed_key = models.CharField(max_length=150)
    created = models.DateTimeField()
    name = models.CharField(max_length=50)
    revoked = models.BooleanField()
    expiry_date = models.DateTimeField(null=True)
    account = models.ForeignKey(Account, on_delete=DO_NOTHING)
    rate_limit = models.CharField(max_length=20, null=True)
    create_scorers = models.BooleanField()
    read_scores = models.BooleanField()
    submit_passports = models.BooleanField()
    analysis_rate_limit = models.CharField(max_length=20, null=True)
    historical_endpoint = models.BooleanField()
    embed_rate_limit = models.CharField(max_length=20, null=True)
    hashed_key_sha256 = models.CharField(max_length=71, null=True)

    class Meta(Unmanaged.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        db_table = "account_accountapikey"

    def __str__(self) -> str:
        return f"{self.prefix} ({self.name})"  # never the hashed primary key


class AccountAPIKeyAnalytics(Unmanaged):
    created_at = models.DateTimeField(null=True)
    path = models.CharField(max_length=1000)
    api_key = models.ForeignKey(AccountAPIKey, on_delete=DO_NOTHING)
    base_path = models.CharField(max_length=200, null=True)
    error = models.TextField(null=True)
    headers = models.JSONField(null=True)
    path_segments = models.JSONField(null=True)
    payload = models.JSONField(null=True)
    query_params = models.JSONField(null=True)
    response = models.JSONField(null=True)
    response_skipped = models.BooleanField(null=True)
    status_code = models.IntegerField(null=True)

    class Meta(Unmanaged.Meta):
        verbose_name = "API key usage record"
        verbose_name_plural = "API key usage records"
        db_table = "account_accountapikeyanalytics"

    def __str__(self) -> str:
        return f"{self.status_code} {self.path}"


class Nonce(Unmanaged):
    """Signing nonces for POST /registry/submit-passport (the original stores them lower-cased)."""

    nonce = models.CharField(max_length=60, unique=True)
    created_on = models.DateTimeField()
    was_used = models.BooleanField()
    expires_on = models.DateTimeField(null=True)

    class Meta(Unmanaged.Meta):
        db_table = "account_nonce"


class AddressList(Unmanaged):
    name = models.CharField(max_length=100, unique=True)

    class Meta(Unmanaged.Meta):
        verbose_name = "address list"
        verbose_name_plural = "address lists"
        db_table = "account_addresslist"

    def __str__(self) -> str:
        return self.name


class AddressListMember(Unmanaged):
    address = models.CharField(max_length=100)
    list = models.ForeignKey(AddressList, on_delete=DO_NOTHING)

    class Meta(Unmanaged.Meta):
        verbose_name = "address list member"
        verbose_name_plural = "address list members"
        db_table = "account_addresslistmember"
        constraints = [
            models.UniqueConstraint(
                fields=["address", "list"], name="account_addresslistmember_address_list_id_671a99b1_uniq"
            )
        ]

    def __str__(self) -> str:
        return self.address


class Scorer(Unmanaged):
    type = models.CharField(max_length=100)
    exclude_from_weight_updates = models.BooleanField()

    class Meta(Unmanaged.Meta):
        verbose_name = "scorer type"
        verbose_name_plural = "scorer types"
        db_table = "scorer_weighted_scorer"

    def __str__(self) -> str:
        return f"Scorer #{self.pk} ({self.type})"


class WeightedScorer(Unmanaged):
    scorer_ptr = models.OneToOneField(Scorer, on_delete=DO_NOTHING, primary_key=True)
    weights = models.JSONField(null=True)
    threshold = models.DecimalField(max_digits=10, decimal_places=5)

    class Meta(Unmanaged.Meta):
        verbose_name = "weights of a weighted scorer"
        verbose_name_plural = "weights of weighted scorers"
        db_table = "scorer_weighted_weightedscorer"

    def __str__(self) -> str:
        return f"Weighted scorer #{self.pk} (threshold {self.threshold})"


class BinaryWeightedScorer(Unmanaged):
    scorer_ptr = models.OneToOneField(Scorer, on_delete=DO_NOTHING, primary_key=True)
    weights = models.JSONField(null=True)
    threshold = models.DecimalField(max_digits=10, decimal_places=5)

    class Meta(Unmanaged.Meta):
        verbose_name = "weights of a binary scorer"
        verbose_name_plural = "weights of binary scorers"
        db_table = "scorer_weighted_binaryweightedscorer"

    def __str__(self) -> str:
        return f"Binary weighted scorer #{self.pk} (threshold {self.threshold})"


class Community(Unmanaged):
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=100)
    account = models.ForeignKey(Account, on_delete=DO_NOTHING)
    scorer = models.ForeignKey(Scorer, on_delete=DO_NOTHING)
    created_at = models.DateTimeField(null=True)
    rule = models.CharField(max_length=100)
    use_case = models.CharField(max_length=100, null=True)
    deleted_at = models.DateTimeField(null=True)
    external_scorer_id = models.CharField(max_length=42, null=True, unique=True)
    human_points_program = models.BooleanField()

    class Meta(Unmanaged.Meta):
        verbose_name = "community (scorer)"
        verbose_name_plural = "communities (scorers)"
        db_table = "account_community"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name", "deleted_at"],
                condition=Q(deleted_at__isnull=False),
                name="unique_deleted_name_per_account",
            ),
            models.UniqueConstraint(
                fields=["account", "name"],
                condition=Q(deleted_at__isnull=True),
                name="unique_non_deleted_name_per_account",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class Customization(Unmanaged):
    """Only the columns scoring reads, plus every NOT NULL column so a row can be written."""

    path = models.CharField(max_length=100, unique=True)
    scorer = models.OneToOneField(Community, on_delete=DO_NOTHING)  # the community, despite the name
    use_custom_dashboard_panel = models.BooleanField()
    body_display_info_tooltip = models.BooleanField()
    button_action_type = models.CharField(max_length=25)
    show_explanation_panel = models.BooleanField()
    partner_name = models.CharField(max_length=100)
    nav_order = models.IntegerField()
    show_in_top_nav = models.BooleanField()

    class Meta(Unmanaged.Meta):
        verbose_name = "customization"
        verbose_name_plural = "customizations"
        db_table = "account_customization"

    def __str__(self) -> str:
        return f"{self.pk} - {self.path}"


class AllowList(Unmanaged):
    weight = models.DecimalField(max_digits=7, decimal_places=4)
    address_list = models.ForeignKey(AddressList, on_delete=DO_NOTHING)
    customization = models.ForeignKey(Customization, on_delete=DO_NOTHING)

    class Meta(Unmanaged.Meta):
        verbose_name = "allow list"
        verbose_name_plural = "allow lists"
        db_table = "account_allowlist"

    def __str__(self) -> str:
        return f"allow list #{self.pk} (weight {self.weight})"


class CustomPlatform(Unmanaged):
    platform_type = models.CharField(max_length=5)
    name = models.CharField(max_length=64)
    display_name = models.CharField(max_length=64, null=True)
    icon_url = models.CharField(max_length=64, null=True)
    description = models.CharField(max_length=256, null=True)
    banner_heading = models.CharField(max_length=64, null=True)
    banner_content = models.CharField(max_length=256, null=True)
    banner_cta_text = models.CharField(max_length=256, null=True)
    banner_cta_url = models.CharField(max_length=256, null=True)
    is_evm = models.BooleanField()

    class Meta(Unmanaged.Meta):
        verbose_name = "custom platform"
        verbose_name_plural = "custom platforms"
        db_table = "account_customplatform"

    def __str__(self) -> str:
        return self.name


class CustomCredentialRuleset(Unmanaged):
    credential_type = models.CharField(max_length=5)
    definition = models.JSONField()
    name = models.CharField(max_length=64)
    provider_id = models.CharField(max_length=256, unique=True)

    class Meta(Unmanaged.Meta):
        verbose_name = "custom credential ruleset"
        verbose_name_plural = "custom credential rulesets"
        db_table = "account_customcredentialruleset"

    def __str__(self) -> str:
        return self.provider_id


class CustomCredential(Unmanaged):
    weight = models.DecimalField(max_digits=7, decimal_places=4)
    display_name = models.CharField(max_length=64)
    description = models.CharField(max_length=256, null=True)
    customization = models.ForeignKey(Customization, on_delete=DO_NOTHING)
    platform = models.ForeignKey(CustomPlatform, on_delete=DO_NOTHING)
    ruleset = models.ForeignKey(CustomCredentialRuleset, on_delete=DO_NOTHING)

    class Meta(Unmanaged.Meta):
        verbose_name = "custom credential"
        verbose_name_plural = "custom credentials"
        db_table = "account_customcredential"

    def __str__(self) -> str:
        return self.display_name


class WalletGroupCommunityClaim(Unmanaged):
    group_key = models.TextField()
    canonical_address = models.CharField(max_length=42)
    claimed_at = models.DateTimeField()
    community = models.ForeignKey(Community, on_delete=DO_NOTHING)

    class Meta(Unmanaged.Meta):
        verbose_name = "wallet group claim"
        verbose_name_plural = "wallet group claims"
        db_table = "account_walletgroupcommunityclaim"
        constraints = [
            models.UniqueConstraint(
                fields=["group_key", "community"], name="account_walletgroupcommu_group_key_community_id_60ec33ad_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.canonical_address} in community {self.community_id}"


class CeramicCache(Unmanaged):
    address = models.CharField(max_length=100, null=True)
    provider = models.CharField(max_length=256)
    stamp = models.JSONField()
    created_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField()
    type = models.IntegerField()
    deleted_at = models.DateTimeField(null=True)
    compose_db_save_status = models.CharField(max_length=10)
    compose_db_stream_id = models.CharField(max_length=100)
    expiration_date = models.DateTimeField(null=True)
    issuance_date = models.DateTimeField(null=True)
    proof_value = models.CharField(max_length=256)
    source_app = models.IntegerField(null=True)
    source_scorer_id = models.BigIntegerField(null=True)

    class Meta(Unmanaged.Meta):
        verbose_name = "stamp held"
        verbose_name_plural = "stamps held"
        db_table = "ceramic_cache_ceramiccache"
        constraints = [
            models.UniqueConstraint(
                fields=["type", "address", "provider", "deleted_at"],
                name="ceramic_cache_ceramiccac_type_address_provider_de_91b0dfe5_uniq",
            ),
            models.UniqueConstraint(
                fields=["type", "address", "provider"],
                condition=Q(deleted_at__isnull=True),
                name="unique_non_deleted_provider_for_address",
            ),
            models.UniqueConstraint(
                fields=["type", "address", "provider", "deleted_at"],
                condition=Q(deleted_at__isnull=False),
                name="unique_deleted_provider_for_address",
            ),
        ]

    def __str__(self) -> str:
        state = "deleted" if self.deleted_at else "live"
        return f"{self.provider} of {self.address} ({state})"


class RevocationList(Unmanaged):
    name = models.CharField(max_length=256, null=True)
    description = models.TextField(null=True)
    csv_file = models.CharField(max_length=1024)

    class Meta(Unmanaged.Meta):
        verbose_name = "revocation list"
        verbose_name_plural = "revocation lists"
        db_table = "ceramic_cache_revocationlist"

    def __str__(self) -> str:
        return self.name or f"revocation list #{self.pk}"


class Revocation(Unmanaged):
    proof_value = models.CharField(max_length=256)
    ceramic_cache = models.OneToOneField(CeramicCache, on_delete=DO_NOTHING)
    revocation_list = models.ForeignKey(RevocationList, on_delete=DO_NOTHING, null=True)

    class Meta(Unmanaged.Meta):
        verbose_name = "revocation"
        verbose_name_plural = "revocations"
        db_table = "ceramic_cache_revocation"

    def __str__(self) -> str:
        return self.proof_value


class Passport(Unmanaged):
    address = models.CharField(max_length=100, null=True)
    community = models.ForeignKey(Community, on_delete=DO_NOTHING, null=True)
    requires_calculation = models.BooleanField(null=True)

    class Meta(Unmanaged.Meta):
        verbose_name = "passport"
        verbose_name_plural = "passports"
        db_table = "registry_passport"
        constraints = [
            models.UniqueConstraint(
                fields=["address", "community"], name="registry_passport_address_community_id_14f7b36b_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.address} in community {self.community_id}"


class Score(Unmanaged):
    passport = models.OneToOneField(Passport, on_delete=DO_NOTHING)
    score = models.DecimalField(max_digits=18, decimal_places=9, null=True)
    last_score_timestamp = models.DateTimeField(null=True)
    status = models.CharField(max_length=20, null=True)
    error = models.TextField(null=True)
    evidence = models.JSONField(null=True)
    stamp_scores = models.JSONField(null=True)
    stamps = models.JSONField(null=True)
    expiration_date = models.DateTimeField(null=True)

    class Meta(Unmanaged.Meta):
        verbose_name = "score"
        verbose_name_plural = "scores"
        # The original's registry.rescore_individual_score, also grantable on a fresh database.
        permissions = [("rescore_individual_score", "Can rescore individual scores")]
        db_table = "registry_score"

    def __str__(self) -> str:
        return f"score of passport {self.passport_id}"


class Stamp(Unmanaged):
    passport = models.ForeignKey(Passport, on_delete=DO_NOTHING, null=True)
    provider = models.CharField(max_length=256)
    credential = models.JSONField()

    class Meta(Unmanaged.Meta):
        verbose_name = "counted stamp"
        verbose_name_plural = "counted stamps"
        db_table = "registry_stamp"

    def __str__(self) -> str:
        return f"{self.provider} of passport {self.passport_id}"


class HashScorerLink(Unmanaged):
    hash = models.CharField(max_length=100)
    address = models.CharField(max_length=42)
    expires_at = models.DateTimeField()
    community = models.ForeignKey(Community, on_delete=DO_NOTHING)

    class Meta(Unmanaged.Meta):
        verbose_name = "nullifier claim"
        verbose_name_plural = "nullifier claims"
        db_table = "registry_hashscorerlink"
        constraints = [
            models.UniqueConstraint(
                fields=["hash", "community"], name="registry_hashscorerlink_hash_community_id_ea7e08a6_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hash} held by {self.address}"


class Event(Unmanaged):
    action = models.CharField(max_length=3)
    address = models.CharField(max_length=42)
    created_at = models.DateTimeField()
    data = models.JSONField()
    community = models.ForeignKey(Community, on_delete=DO_NOTHING, null=True)

    class Meta(Unmanaged.Meta):
        verbose_name = "event"
        verbose_name_plural = "events"
        db_table = "registry_event"

    def __str__(self) -> str:
        return f"{self.action} {self.address} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class HumanPoints(Unmanaged):
    address = models.CharField(max_length=42)
    action = models.CharField(max_length=3)
    timestamp = models.DateTimeField()
    tx_hash = models.CharField(max_length=100)
    chain_id = models.IntegerField()
    provider = models.CharField(max_length=100)

    class Meta(Unmanaged.Meta):
        verbose_name = "human points award"
        verbose_name_plural = "human points awards"
        db_table = "registry_humanpoints"
        constraints = [
            models.UniqueConstraint(
                fields=["address", "action", "chain_id", "provider", "tx_hash"], name="unique_human_points_constraint"
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} for {self.address}"


class HumanPointsCommunityQualifiedUsers(Unmanaged):
    address = models.CharField(max_length=42)
    community = models.ForeignKey(Community, on_delete=DO_NOTHING)

    class Meta(Unmanaged.Meta):
        verbose_name = "human points qualified user"
        verbose_name_plural = "human points qualified users"
        db_table = "registry_humanpointscommunityqualifiedusers"
        constraints = [
            models.UniqueConstraint(
                fields=["address", "community"], name="registry_humanpointscomm_address_community_id_a9e351f4_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.address} in community {self.community_id}"


class HumanPointsConfig(Unmanaged):
    action = models.CharField(max_length=3, unique=True)
    points = models.IntegerField()
    active = models.BooleanField()

    class Meta(Unmanaged.Meta):
        verbose_name = "human points config"
        verbose_name_plural = "human points configs"
        db_table = "registry_humanpointsconfig"

    def __str__(self) -> str:
        return f"{self.action}: {self.points} points"


class HumanPointsMultiplier(Unmanaged):
    address = models.CharField(max_length=42, primary_key=True)
    multiplier = models.IntegerField()

    class Meta(Unmanaged.Meta):
        verbose_name = "human points multiplier"
        verbose_name_plural = "human points multipliers"
        db_table = "registry_humanpointsmultiplier"

    def __str__(self) -> str:
        return f"{self.address} x{self.multiplier}"
