"""Client accounts, their users and API keys, funding workflows and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.models import AMOUNT


class AccountStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACTIVE = "active", "Active"
    FROZEN = "frozen", "Frozen"
    CLOSED = "closed", "Closed"


class KycStatus(models.TextChoices):
    NONE = "none", "Not started"
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class AccountKind(models.TextChoices):
    INDIVIDUAL = "individual", "Individual"
    INSTITUTION = "institution", "Institution"


class Tier(models.TextChoices):
    STANDARD = "standard", "Standard"
    PROFESSIONAL = "professional", "Professional"
    VIP = "vip", "VIP"


class ClientAccount(models.Model):
    legal_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=AccountKind.choices, default=AccountKind.INSTITUTION)
    status = models.CharField(max_length=8, choices=AccountStatus.choices, default=AccountStatus.PENDING)
    kyc_status = models.CharField(max_length=8, choices=KycStatus.choices, default=KycStatus.NONE)
    tier = models.CharField(max_length=12, choices=Tier.choices, default=Tier.STANDARD)
    can_trade = models.BooleanField(default=True)
    can_withdraw = models.BooleanField(default=True)
    # KYC is approved by compliance or a second person: never by whoever opened the account (README "Security").
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    kyc_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    kyc_approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        permissions = [
            ("freeze_clientaccount", "Can freeze, unfreeze and close client accounts"),
            ("export_reports", "Can export compliance reports"),
            ("approve_kyc", "Can approve a client's KYC (never of an account they opened)"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kyc_approved_by__isnull=True) | Q(created_by__isnull=True)
                | ~Q(kyc_approved_by=F("created_by")),
                name="client_account_kyc_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.legal_name} (#{self.pk})"


class AssetLimit(models.Model):
    """Per-account, per-asset limits; absent means no account-specific limit."""

    account = models.ForeignKey(ClientAccount, on_delete=models.CASCADE, related_name="asset_limits")
    asset = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    max_order_size = models.DecimalField(**AMOUNT, null=True, blank=True)
    daily_withdrawal_limit = models.DecimalField(**AMOUNT, null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "asset"], name="asset_limit_unique")]


class Role(models.TextChoices):
    ADMIN = "admin", "Account admin"
    TRADER = "trader", "Trader"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    """A user's place in exactly one client account, with a role."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    account = models.ForeignKey(ClientAccount, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "client user"

    def __str__(self) -> str:
        return f"{self.user} @ {self.account_id} ({self.role})"


class Scope(models.TextChoices):
    READ = "read", "Read"
    TRADE = "trade", "Trade"
    TRANSFER = "transfer", "Transfer"
    # Creating and revoking API keys. Never implied by another scope: a read-only key cannot mint keys.
    MANAGE_KEYS = "manage_keys", "Manage API keys"


ROLE_SCOPES = {
    Role.VIEWER: {Scope.READ, Scope.MANAGE_KEYS},
    Role.TRADER: {Scope.READ, Scope.TRADE, Scope.MANAGE_KEYS},
    Role.ADMIN: {Scope.READ, Scope.TRADE, Scope.TRANSFER, Scope.MANAGE_KEYS},
}


class ApiKey(models.Model):
    """Credential of a client app. The secret is shown once at creation and stored only as a SHA-256 hash."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    account = models.ForeignKey(ClientAccount, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    allowed_ips = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Refused from this time on; empty: never.")
    created_by_key = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="created_keys",
        help_text="The key this key was created with: revoking it revokes this one too.",
    )
    signing_required = models.BooleanField(
        default=False, help_text="Every request must carry an HMAC-SHA256 signature (README: request signing)."
    )

    class Meta:
        ordering = ["-id"]
        verbose_name = "API key"
        permissions = [("issue_apikey", "Can issue API keys to client users (keys that move money need approval)")]

    def __str__(self) -> str:
        return f"{self.prefix} ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class ApiKeyRequestStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved and issued"
    REJECTED = "rejected", "Rejected"


class ApiKeyRequest(models.Model):
    """A key that can move money (``trade`` or ``transfer`` scope), issued by staff under dual control: one staff
    user proposes it, a different one approves it, and only the approval creates the key (``accounts.services.onboarding``).
    The database keeps the approver distinct from the proposer and an approved request tied to its key."""

    account = models.ForeignKey(ClientAccount, on_delete=models.PROTECT, related_name="api_key_requests")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                             help_text="The client user the key is for.")
    name = models.CharField(max_length=100, blank=True)
    scopes = models.JSONField(default=list)
    allowed_ips = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=ApiKeyRequestStatus.choices, default=ApiKeyRequestStatus.PROPOSED)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True, help_text="Why it was rejected.")
    key = models.OneToOneField(ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="issue_request")

    class Meta:
        ordering = ["-id"]
        verbose_name = "API key request"
        permissions = [("approve_apikeyrequest", "Can approve an API key request proposed by someone else")]
        constraints = [
            models.CheckConstraint(condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("proposed_by")),
                                   name="api_key_request_four_eyes"),
            models.CheckConstraint(condition=~Q(user=F("proposed_by")) & ~Q(user=F("decided_by")),
                                   name="api_key_request_not_for_staff_themselves"),
            models.CheckConstraint(
                condition=(Q(status=ApiKeyRequestStatus.APPROVED) & Q(key__isnull=False) & Q(decided_by__isnull=False))
                | (Q(status=ApiKeyRequestStatus.REJECTED) & Q(key__isnull=True) & Q(decided_by__isnull=False))
                | (Q(status=ApiKeyRequestStatus.PROPOSED) & Q(key__isnull=True) & Q(decided_by__isnull=True)),
                name="api_key_request_decision_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"API key request #{self.pk} for {self.user} ({', '.join(self.scopes)}; {self.status})"


class FundingStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class FundingBase(models.Model):
    account = models.ForeignKey(ClientAccount, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**AMOUNT)
    status = models.CharField(max_length=10, choices=FundingStatus.choices, default=FundingStatus.REQUESTED)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    blockchain_address = models.CharField(max_length=128, blank=True)
    tx_hash = models.CharField(max_length=128, blank=True)
    bank_reference = models.CharField(max_length=128, blank=True)
    reason = models.CharField(max_length=500, blank=True, help_text="Why it was rejected or cancelled.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    entry = models.OneToOneField(
        "ledger.JournalEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-id"]


COMPLETED_HAS_ENTRY = ~Q(status=FundingStatus.COMPLETED) | Q(entry__isnull=False)
OPEN_FUNDING_STATUSES = (FundingStatus.REQUESTED, FundingStatus.APPROVED)


class Deposit(FundingBase):
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta(FundingBase.Meta):
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="deposit_amount_positive"),
            models.CheckConstraint(condition=COMPLETED_HAS_ENTRY, name="deposit_completed_has_entry"),
            # Dual control, guaranteed by the database: a deposit is approved by someone other than its
            # requester and completed (the client credited) by someone other than its approver, so no one
            # person alone ever credits a client, whoever filed the notice.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("requested_by")),
                name="deposit_approver_not_requester",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[FundingStatus.APPROVED, FundingStatus.COMPLETED])
                | Q(approved_by__isnull=False),
                name="deposit_approved_has_approver",
            ),
            models.CheckConstraint(
                condition=~Q(status=FundingStatus.COMPLETED)
                | (Q(completed_by__isnull=False) & ~Q(completed_by=F("approved_by"))),
                name="deposit_completer_not_approver",
            ),
            models.UniqueConstraint(
                fields=["account", "idempotency_key"], name="deposit_idempotency_unique_per_account"
            ),
        ]


class Withdrawal(FundingBase):
    hold = models.OneToOneField("ledger.Hold", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requires_four_eyes = models.BooleanField(default=False)
    second_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta(FundingBase.Meta):
        permissions = [("approve_withdrawal", "Can approve withdrawals")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="withdrawal_amount_positive"),
            models.CheckConstraint(condition=COMPLETED_HAS_ENTRY, name="withdrawal_completed_has_entry"),
            # Four eyes, guaranteed by the database: no approver is the requester, the two approvers differ.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("requested_by")),
                name="withdrawal_approver_not_requester",
            ),
            models.CheckConstraint(
                condition=Q(second_approved_by__isnull=True)
                | (~Q(second_approved_by=F("approved_by")) & ~Q(second_approved_by=F("requested_by"))),
                name="withdrawal_second_approver_distinct",
            ),
            models.UniqueConstraint(
                fields=["account", "idempotency_key"], name="withdrawal_idempotency_unique_per_account"
            ),
        ]


class WithdrawalDestination(models.Model):
    """An entry of an account's withdrawal address book: a blockchain address (crypto) or bank reference (fiat)
    the account may withdraw an asset to, from ``usable_from`` (the cool-off after it was added) until it is
    removed. Withdrawals to anything else are refused."""

    account = models.ForeignKey(ClientAccount, on_delete=models.PROTECT, related_name="withdrawal_destinations")
    asset = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    address = models.CharField(max_length=128, help_text="Blockchain address, or bank reference for fiat.")
    label = models.CharField(max_length=100, blank=True)
    usable_from = models.DateTimeField(help_text="End of the cool-off: withdrawals to it are refused before.")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "asset", "address"], condition=Q(removed_at__isnull=True),
                                    name="withdrawal_destination_unique_while_listed"),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} {self.address}" + (f" ({self.label})" if self.label else "")


class IdempotencyRecord(models.Model):
    """The stored response of an idempotent API request, replayed when the same key comes again."""

    account = models.ForeignKey(ClientAccount, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    endpoint = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "endpoint", "key"], name="idempotency_unique_per_endpoint")
        ]
