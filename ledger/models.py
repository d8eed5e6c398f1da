"""The double-entry ledger: assets, ledger accounts, journal entries, postings, balances and holds.

Sign convention: ``Posting.amount`` is signed, debit positive and credit negative, so every entry sums to zero
per asset. ``Balance.amount`` is the *natural* balance, the posting sum multiplied by the account's normal
sign (+1 for asset and expense accounts, -1 for liability, equity and revenue accounts), so what the firm owes
a client reads as a positive number. Only ``ledger.services`` writes these tables.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.models import AMOUNT, AppendOnlyModel


class Asset(models.Model):
    code = models.CharField(max_length=12, primary_key=True)
    name = models.CharField(max_length=64)
    precision = models.PositiveSmallIntegerField(help_text="Decimal places of the smallest unit.")
    is_fiat = models.BooleanField(default=False)

    class Meta:
        ordering = ["code"]
        constraints = [models.CheckConstraint(condition=Q(precision__lte=18), name="asset_precision_lte_18")]

    def __str__(self) -> str:
        return self.code

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.precision)


class AccountType(models.TextChoices):
    ASSET = "asset", "Asset"
    LIABILITY = "liability", "Liability"
    EQUITY = "equity", "Equity"
    REVENUE = "revenue", "Revenue"
    EXPENSE = "expense", "Expense"


NORMAL_SIGN = {
    AccountType.ASSET: 1,
    AccountType.EXPENSE: 1,
    AccountType.LIABILITY: -1,
    AccountType.EQUITY: -1,
    AccountType.REVENUE: -1,
}


class Purpose(models.TextChoices):
    CLIENT = "client", "Client funds"
    CUSTODY = "custody", "Custody / omnibus"
    FEES = "fees", "Fee revenue"
    SETTLEMENT = "settlement", "Settlement"
    SUSPENSE = "suspense", "Suspense"
    EQUITY = "equity", "Firm equity"
    EXPENSE = "expense", "Firm expense"
    INVENTORY = "inventory", "Principal inventory"


class LedgerAccount(models.Model):
    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    type = models.CharField(max_length=10, choices=AccountType.choices)
    purpose = models.CharField(max_length=12, choices=Purpose.choices)
    client = models.OneToOneField(
        "accounts.ClientAccount", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_account"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(purpose="client", client__isnull=False) | (~Q(purpose="client") & Q(client__isnull=True)),
                name="ledger_account_client_iff_client_purpose",
            )
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def normal_sign(self) -> int:
        return NORMAL_SIGN[self.type]

    @property
    def is_client(self) -> bool:
        return self.purpose == Purpose.CLIENT


class JournalEntry(AppendOnlyModel):
    """An immutable, balanced set of postings. Corrections are new entries that reverse this one."""

    key = models.CharField(max_length=200, unique=True, help_text="Idempotency key derived from the cause.")
    kind = models.CharField(max_length=32, db_index=True)
    memo = models.CharField(max_length=500, blank=True)
    content_hash = models.CharField(max_length=64)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return f"#{self.pk} {self.key}"


class Posting(AppendOnlyModel):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    # Indexed by (account, asset, created_at) below; single-column indexes would only slow the matcher's inserts.
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings", db_index=False)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+", db_index=False)
    amount = models.DecimalField(**AMOUNT, help_text="Debit positive, credit negative.")
    created_at = models.DateTimeField(help_text="Copied from the entry, for as-of queries.")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["account", "asset", "created_at"], name="posting_account_asset_time")]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="posting_amount_nonzero")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.asset_id} {self.amount}"


class Balance(models.Model):
    """Running natural balance and held amount per (ledger account, asset), kept in step with postings."""

    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="balances")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**AMOUNT, default=Decimal(0))
    held = models.DecimalField(**AMOUNT, default=Decimal(0))
    enforce_floor = models.BooleanField(
        default=True, help_text="Client balances may not drop below -credit_limit after holds."
    )
    credit_limit = models.DecimalField(**AMOUNT, default=Decimal(0))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account_id", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "asset"], name="balance_unique_account_asset"),
            models.CheckConstraint(condition=Q(held__gte=0), name="balance_held_non_negative"),
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="balance_credit_limit_non_negative"),
            models.CheckConstraint(
                condition=Q(enforce_floor=False) | Q(amount__gte=F("held") - F("credit_limit")),
                name="balance_available_above_floor",
            ),
        ]

    @property
    def available(self) -> Decimal:
        return self.amount - self.held


class HoldStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RELEASED = "released", "Released"
    CAPTURED = "captured", "Captured"


class Hold(models.Model):
    """A reservation of part of a client's balance (open order, pending withdrawal).

    Holds move no money, so they are not journal entries; ``Balance.held`` is the sum of active holds'
    ``remaining`` and is updated under the same row lock as the balance.
    """

    key = models.CharField(max_length=200, unique=True)
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="holds")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**AMOUNT)
    remaining = models.DecimalField(**AMOUNT)
    status = models.CharField(max_length=10, choices=HoldStatus.choices, default=HoldStatus.ACTIVE)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["account", "asset", "status"], name="hold_account_asset_status")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("amount")), name="hold_remaining_in_range"
            ),
            models.CheckConstraint(
                condition=Q(status="active") | Q(remaining=0), name="hold_closed_has_nothing_remaining"
            ),
        ]

    def __str__(self) -> str:
        return f"hold {self.key} {self.remaining}/{self.amount} {self.asset_id}"


class AdjustmentStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved and posted"
    REJECTED = "rejected", "Rejected"


class Adjustment(models.Model):
    """A manual balance correction under maker-checker: proposed by one staff user, approved by another."""

    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="adjustments")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**AMOUNT, help_text="Positive credits the account, negative debits it.")
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=AdjustmentStatus.choices, default=AdjustmentStatus.PROPOSED)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    entry = models.OneToOneField(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="adjustment"
    )

    class Meta:
        ordering = ["-id"]
        permissions = [("approve_adjustment", "Can approve a manual adjustment proposed by someone else")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="adjustment_amount_nonzero"),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("proposed_by")),
                name="adjustment_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        return f"adjustment #{self.pk} {self.amount} {self.asset_id} ({self.status})"


class BalanceSnapshot(models.Model):
    """End-of-day natural balance per account and asset, the starting point of as-of statements."""

    day = models.DateField(help_text="Balance at the end of this UTC day.")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="snapshots")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**AMOUNT)
    last_posting_id = models.BigIntegerField(help_text="Highest posting id included.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "account_id", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["day", "account", "asset"], name="snapshot_unique_day_account_asset")
        ]


class ReconciliationRun(models.Model):
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ok = models.BooleanField(null=True, help_text="Null while running; false when any break was found.")
    checks = models.JSONField(default=dict, blank=True, help_text="Summary figures per check.")

    class Meta:
        ordering = ["-id"]


class ReconciliationBreak(models.Model):
    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="breaks")
    check_name = models.CharField(max_length=64)
    account = models.ForeignKey(LedgerAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    expected = models.DecimalField(**AMOUNT, null=True, blank=True)
    actual = models.DecimalField(**AMOUNT, null=True, blank=True)
    detail = models.CharField(max_length=500)

    class Meta:
        ordering = ["id"]


class ReportJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ReportJob(models.Model):
    """A compliance report written by a worker to a file under MEDIA_ROOT, with its progress."""

    report = models.CharField(max_length=32)
    format = models.CharField(max_length=4)
    start = models.DateTimeField()
    end = models.DateTimeField()
    account = models.ForeignKey(
        "accounts.ClientAccount", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=8, choices=ReportJobStatus.choices, default=ReportJobStatus.QUEUED)
    rows_total = models.BigIntegerField(null=True, blank=True)
    rows_done = models.BigIntegerField(default=0)
    file = models.CharField(max_length=255, blank=True, help_text="Path of the finished file under MEDIA_ROOT.")
    sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the content after the header line.")
    error = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"report job #{self.pk} {self.report} ({self.status})"

    @property
    def percent(self) -> int | None:
        if self.status == ReportJobStatus.DONE:
            return 100
        if not self.rows_total:
            return None
        return min(99, self.rows_done * 100 // self.rows_total)
