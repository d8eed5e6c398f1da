"""Ledger in the operations console: read-only books, and manual adjustments under maker-checker."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from core.admin_kit import (
    MakerCheckerAdminMixin,
    ReadOnlyAdminMixin,
    ServiceAddMixin,
    reason_action,
    service_action,
)
from ledger import services
from ledger.models import (
    Adjustment,
    Asset,
    Balance,
    BalanceSnapshot,
    Hold,
    JournalEntry,
    LedgerAccount,
    Posting,
    Purpose,
)
from ledger.templatetags.console_format import amount as fmt_amount

APPROVE_ADJUSTMENT = "ledger.approve_adjustment"


@admin.register(Asset)
class AssetAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["code", "name", "precision", "is_fiat"]


class BalanceInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Balance
    fields = ["asset", "total", "held", "available", "credit_limit", "updated_at"]
    readonly_fields = fields
    extra = 0

    @admin.display(description="total")
    def total(self, obj):
        return fmt_amount(obj.amount)

    @admin.display(description="available")
    def available(self, obj):
        return fmt_amount(obj.available)


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["code", "name", "type", "purpose", "client", "statement"]
    list_filter = ["purpose", "type"]
    search_fields = ["code", "name", "client__legal_name"]
    list_select_related = ["client"]
    inlines = [BalanceInline]

    @admin.display(description="statement")
    def statement(self, obj):
        return format_html('<a href="{}">statement</a>', reverse("admin:account_statement", args=[obj.pk]))


class PostingInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Posting
    fields = ["account", "asset", "debit", "credit"]
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")

    @admin.display(description="debit")
    def debit(self, obj):
        return fmt_amount(obj.amount) if obj.amount > 0 else ""

    @admin.display(description="credit")
    def credit(self, obj):
        return fmt_amount(-obj.amount) if obj.amount < 0 else ""


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "key", "kind", "memo", "created_at", "created_by"]
    list_filter = ["kind", "created_at"]
    search_fields = ["key", "memo", "id__exact"]
    list_select_related = ["created_by"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [PostingInline]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "key", "account", "asset", "amount", "remaining", "status", "reason", "created_at"]
    list_filter = ["status", "asset"]
    search_fields = ["key", "account__code", "account__client__legal_name"]
    list_select_related = ["account"]
    show_full_result_count = False


@admin.register(BalanceSnapshot)
class BalanceSnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["day", "account", "asset", "amount"]
    list_filter = ["day", "asset"]
    search_fields = ["account__code", "account__client__legal_name"]
    list_select_related = ["account"]


# --- manual adjustments -------------------------------------------------------------------------------------


class ClientLedgerAccountChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.client.legal_name} (client #{obj.client_id}, {obj.code})"


class AdjustmentProposalForm(forms.Form):
    account = ClientLedgerAccountChoice(
        queryset=LedgerAccount.objects.filter(purpose=Purpose.CLIENT).select_related("client").order_by("client_id")
    )
    asset = forms.ModelChoiceField(queryset=Asset.objects.all())
    amount = forms.DecimalField(
        max_digits=38, decimal_places=18, help_text="Positive credits the client, negative debits the client."
    )
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


def _approve(adjustment, acting_user):
    return services.adjustment_approve(adjustment=adjustment, acting_user=acting_user)


def _reject(adjustment, acting_user, reason):
    return services.adjustment_reject(adjustment=adjustment, acting_user=acting_user, reason=reason)


@admin.register(Adjustment)
class AdjustmentAdmin(MakerCheckerAdminMixin, ServiceAddMixin, admin.ModelAdmin):
    """Proposed by one user, decided by another who holds ``ledger.approve_adjustment``; see the services."""

    add_form = AdjustmentProposalForm
    add_intro = "The adjustment is posted only when another staff user with the approve permission approves it."

    list_display = ["id", "client", "asset", "signed_amount", "status", "proposed_by", "proposed_at", "decided_by"]
    list_filter = ["status", "asset"]
    search_fields = ["reason", "account__code", "account__client__legal_name", "id__exact"]
    list_select_related = ["account__client", "proposed_by", "decided_by"]
    readonly_fields = ["client", "signed_amount", "entry_link"]
    fields = [
        "client", "asset", "signed_amount", "reason", "status",
        "proposed_by", "proposed_at", "decided_by", "decided_at", "entry_link",
    ]
    actions = [
        service_action(
            name="approve_selected", description="Approve selected adjustments (posts them)",
            permission="approve", call=_approve, done="Approved and posted",
        ),
        reason_action(
            name="reject_selected", description="Reject selected adjustments",
            permission="approve", call=_reject, done="Rejected",
        ),
    ]
    decision_permission = APPROVE_ADJUSTMENT
    approve_label = "Approve and post"
    approved = "approved and posted"

    def approve(self, obj, acting_user):
        return _approve(obj, acting_user)

    def reject(self, obj, acting_user, reason):
        return _reject(obj, acting_user, reason)

    def has_change_permission(self, request, obj=None):
        return False  # decided through approve/reject only

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="client")
    def client(self, obj):
        url = reverse("admin:accounts_clientaccount_change", args=[obj.account.client_id])
        return format_html('<a href="{}">{}</a>', url, obj.account.client)

    @admin.display(description="amount (+ credits the client)")
    def signed_amount(self, obj):
        return fmt_amount(obj.amount)

    @admin.display(description="journal entry")
    def entry_link(self, obj):
        if obj.entry_id is None:
            return "-"
        url = reverse("admin:ledger_journalentry_change", args=[obj.entry_id])
        return format_html('<a href="{}">{}</a>', url, obj.entry_id)

    def create_through_service(self, request, data):
        return services.adjustment_propose(acting_user=request.user, **data)

    def created_message(self, obj):
        return f"Adjustment #{obj.pk} proposed; another user must approve it before it is posted."
