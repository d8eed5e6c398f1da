"""Client accounts, API keys, funding and the audit log in the operations console.

Every change goes through ``accounts.services`` (which checks the rules and writes the audit log); the audit log
itself is read-only here.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from accounts import services
from accounts.admin_onboarding import issue_key_url  # also registers the client-user and key-request pages
from accounts.models import (
    AccountKind,
    ApiKey,
    AssetLimit,
    ClientAccount,
    Deposit,
    KycStatus,
    Membership,
    Tier,
    Withdrawal,
    WithdrawalDestination,
)
from core.admin_kit import (
    DomainErrorsAsMessagesMixin,
    NoDeleteMixin,
    ReadOnlyAdminMixin,
    ServiceAddMixin,
    perm_checker,
    reason_action,
    service_action,
)
from ledger.models import Asset
from ledger.selectors import balances_list
from ledger.templatetags.console_format import amount as fmt_amount
from trading import services as trading_services

FREEZE = "accounts.freeze_clientaccount"
CANCEL_ORDERS = "trading.change_order"
REVOKE_KEYS = "accounts.change_apikey"
APPROVE_WITHDRAWAL = "accounts.approve_withdrawal"
APPROVE_KYC = "accounts.approve_kyc"
HANDLE_DEPOSIT = "accounts.change_deposit"
HANDLE_WITHDRAWAL = "accounts.change_withdrawal"
MANAGE_DESTINATIONS = "accounts.change_withdrawaldestination"


# --- client accounts ----------------------------------------------------------------------------------------


class MembershipInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The account's users; each opens its client-user page (role, set-password link, keys, deactivation)."""

    model = Membership
    fields = ["user", "email", "role", "active", "created_at", "issue_key"]
    readonly_fields = fields
    extra = 0
    verbose_name = "user"
    verbose_name_plural = "users"
    show_change_link = True

    @admin.display(description="email")
    def email(self, obj):
        return obj.user.email

    @admin.display(description="active", boolean=True)
    def active(self, obj):
        return obj.user.is_active

    @admin.display(description="")
    def issue_key(self, obj):
        return format_html('<a href="{}">issue an API key</a>', issue_key_url(obj.user))


class ApiKeyInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ApiKey
    fields = ["prefix", "name", "user", "scopes", "allowed_ips", "created_at", "last_used_at", "expires_at",
              "revoked_at", "created_by_key", "signing_required"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


class AssetLimitInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = AssetLimit
    fields = ["asset", "max_order_size", "daily_withdrawal_limit"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


class ClientAccountCreateForm(forms.Form):
    legal_name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=AccountKind.choices, initial=AccountKind.INSTITUTION)
    tier = forms.ChoiceField(choices=Tier.choices, initial=Tier.STANDARD)


def _call(service, **fixed):
    """Adapt ``service(account=..., acting_user=..., reason=...)`` to the (obj, user[, reason]) action shape."""

    def call(obj, acting_user, reason=""):
        return service(account=obj, acting_user=acting_user, reason=reason, **fixed)

    return call


def _revoke_all_keys(account, acting_user):
    for key in account.api_keys.filter(revoked_at__isnull=True):
        services.api_key_revoke(key=key, acting_user=acting_user)


def _cancel_all_orders(account, acting_user):
    trading_services.orders_cancel_all(account=account, acting_user=acting_user,
                                       reason=trading_services.CANCELLED_BY_OPERATIONS)


@admin.register(ClientAccount)
class ClientAccountAdmin(ServiceAddMixin, DomainErrorsAsMessagesMixin, NoDeleteMixin, admin.ModelAdmin):
    list_display = ["id", "legal_name", "kind", "status", "kyc_status", "tier", "can_trade", "can_withdraw",
                    "created_at"]
    list_display_links = ["id", "legal_name"]
    list_filter = ["status", "kyc_status", "tier", "kind", "can_trade", "can_withdraw"]
    search_fields = ["legal_name", "id__exact", "memberships__user__username", "memberships__user__email",
                     "api_keys__prefix"]
    fields = ["legal_name", "kind", "status", "kyc_status", "kyc_approved_by", "kyc_approved_at", "tier", "can_trade",
              "can_withdraw", "balances", "ledger_links", "onboarding_links", "created_by", "created_at", "updated_at"]
    readonly_fields = ["kind", "status", "kyc_approved_by", "kyc_approved_at", "balances", "ledger_links",
                       "onboarding_links", "created_by", "created_at", "updated_at"]
    inlines = [MembershipInline, ApiKeyInline, AssetLimitInline]
    add_form = ClientAccountCreateForm
    add_intro = ("The account opens as pending with its ledger account; approve KYC and activate it next, then add "
                 "its users and issue their API keys (links on the account's page).")
    actions = [
        service_action(name="approve_kyc", description="Approve KYC of selected accounts (not ones you opened)",
                       permission="approve_kyc", done="KYC approved",
                       call=lambda account, user: services.kyc_status_set(
                           account=account, kyc_status=KycStatus.APPROVED, acting_user=user, reason="approved")),
        service_action(name="activate", description="Activate selected accounts (KYC approved)",
                       permission="freeze", call=_call(services.account_activate), done="Activated"),
        reason_action(name="freeze", description="Freeze selected accounts", permission="freeze",
                      call=_call(services.account_freeze), done="Frozen"),
        reason_action(name="unfreeze", description="Unfreeze selected accounts", permission="freeze",
                      call=_call(services.account_unfreeze), done="Unfrozen"),
        reason_action(name="close", description="Close selected accounts (must hold nothing)", permission="freeze",
                      call=_call(services.account_close), done="Closed"),
        service_action(name="revoke_all_keys", description="Revoke all API keys of selected accounts",
                       permission="revoke_keys", call=_revoke_all_keys, done="Keys revoked"),
        service_action(name="cancel_all_orders", description="Cancel all open orders of selected accounts",
                       permission="cancel_orders", call=_cancel_all_orders, done="Orders cancelled"),
    ]
    has_freeze_permission = perm_checker(FREEZE)
    has_approve_kyc_permission = perm_checker(APPROVE_KYC)
    has_revoke_keys_permission = perm_checker(REVOKE_KEYS)
    has_cancel_orders_permission = perm_checker(CANCEL_ORDERS)

    def create_through_service(self, request, data):
        return services.client_account_create(acting_user=request.user, **data)

    def save_model(self, request, obj, form, change):
        """Only the change form reaches here (adding is a service form): profile and KYC through services."""
        changed = set(form.changed_data)
        profile = {f: form.cleaned_data[f] for f in ("legal_name", "tier", "can_trade", "can_withdraw") if f in changed}
        if profile:
            services.account_update(account=obj, acting_user=request.user, **profile)
        if "kyc_status" in changed:
            services.kyc_status_set(account=obj, kyc_status=form.cleaned_data["kyc_status"], acting_user=request.user)

    @admin.display(description="balances")
    def balances(self, obj):
        ledger_account = getattr(obj, "ledger_account", None)
        rows = balances_list(account=ledger_account) if ledger_account else []
        if not rows:
            return "No balances."
        body = format_html_join(
            "",
            '<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>',
            ((b.asset, fmt_amount(b.total), fmt_amount(b.held), fmt_amount(b.available)) for b in rows),
        )
        return format_html(
            '<table id="client-balances"><thead><tr><th>Asset</th><th>Total</th><th>Held</th><th>Available</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            body,
        )

    @admin.display(description="onboarding")
    def onboarding_links(self, obj):
        return format_html(
            '<a href="{}" id="add-client-user">add a user</a> &middot; <a href="{}">API key requests</a>',
            reverse("admin:accounts_membership_add") + f"?account={obj.pk}",
            reverse("admin:accounts_apikeyrequest_changelist") + f"?account__id__exact={obj.pk}",
        )

    @admin.display(description="ledger")
    def ledger_links(self, obj):
        ledger_account = getattr(obj, "ledger_account", None)
        if ledger_account is None:
            return "-"
        return format_html(
            '<a href="{}">statement</a> &middot; <a href="{}">orders</a> &middot; '
            '<a href="{}">audit log</a> &middot; <a href="{}">propose an adjustment</a>',
            reverse("admin:account_statement", args=[ledger_account.pk]),
            reverse("admin:trading_order_changelist") + f"?account__id__exact={obj.pk}",
            reverse("admin:audit_auditlog_changelist") + f"?account__id__exact={obj.pk}",
            reverse("admin:ledger_adjustment_add") + f"?account={ledger_account.pk}",
        )


# --- API keys and limits ------------------------------------------------------------------------------------


class RevokedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["prefix", "name", "account", "user", "scopes", "created_at", "last_used_at", "expires_at",
                    "revoked_at", "signing_required"]
    list_filter = [RevokedFilter]
    search_fields = ["prefix", "name", "account__legal_name", "user__username"]
    list_select_related = ["account", "user"]
    exclude = ["secret_hash"]
    actions = [
        service_action(name="revoke", description="Revoke selected API keys", permission="revoke_keys",
                       call=lambda key, user: services.api_key_revoke(key=key, acting_user=user), done="Revoked"),
    ]
    has_revoke_keys_permission = perm_checker(REVOKE_KEYS)


class AssetLimitForm(forms.Form):
    account = forms.ModelChoiceField(queryset=ClientAccount.objects.all())
    asset = forms.ModelChoiceField(queryset=Asset.objects.all())
    max_order_size = forms.DecimalField(max_digits=38, decimal_places=18, required=False)
    daily_withdrawal_limit = forms.DecimalField(max_digits=38, decimal_places=18, required=False)


@admin.register(AssetLimit)
class AssetLimitAdmin(ServiceAddMixin, DomainErrorsAsMessagesMixin, NoDeleteMixin, admin.ModelAdmin):
    list_display = ["account", "asset", "max_order_size", "daily_withdrawal_limit"]
    list_filter = ["asset"]
    search_fields = ["account__legal_name"]
    list_select_related = ["account"]
    readonly_fields = ["account", "asset"]
    add_form = AssetLimitForm
    add_intro = "Empty means no limit. Setting the limits of an account and asset again replaces them."

    def create_through_service(self, request, data):
        return services.asset_limit_set(acting_user=request.user, **data)

    def save_model(self, request, obj, form, change):
        services.asset_limit_set(
            account=obj.account, asset=obj.asset, acting_user=request.user,
            max_order_size=form.cleaned_data["max_order_size"],
            daily_withdrawal_limit=form.cleaned_data["daily_withdrawal_limit"],
        )


# --- funding ------------------------------------------------------------------------------------------------


class FundingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "account", "asset", "amount", "status", "requested_by", "approved_by", "created_at"]
    list_filter = ["status", "asset"]
    search_fields = ["id__exact", "account__legal_name", "tx_hash", "bank_reference", "blockchain_address",
                     "idempotency_key"]
    list_select_related = ["account", "requested_by", "approved_by"]
    date_hierarchy = "created_at"


class DepositForm(forms.Form):
    account = forms.ModelChoiceField(queryset=ClientAccount.objects.all())
    asset = forms.ModelChoiceField(queryset=Asset.objects.all())
    amount = forms.DecimalField(max_digits=38, decimal_places=18)
    bank_reference = forms.CharField(max_length=128, required=False)
    tx_hash = forms.CharField(max_length=128, required=False)
    blockchain_address = forms.CharField(max_length=128, required=False)


@admin.register(Deposit)
class DepositAdmin(ServiceAddMixin, FundingAdmin):
    """Dual control (``services.deposit_approve``/``deposit_complete`` and database checks): approved by someone
    other than the requester, completed by someone other than the approver."""

    list_display = ["id", "account", "asset", "amount", "status", "requested_by", "approved_by", "completed_by",
                    "created_at"]
    list_select_related = ["account", "requested_by", "approved_by", "completed_by"]
    add_form = DepositForm
    add_intro = ("Records an incoming transfer with its bank reference or transaction hash. Another person "
                 "approves it, and a person other than the approver completes it: only then is the client "
                 "credited.")
    actions = [
        service_action(name="approve", description="Approve selected deposits", permission="handle",
                       call=lambda d, user: services.deposit_approve(deposit=d, acting_user=user), done="Approved"),
        service_action(name="complete", description="Complete selected deposits (credits the client)",
                       permission="handle", done="Completed",
                       call=lambda d, user: services.deposit_complete(deposit=d, acting_user=user)),
        reason_action(name="reject", description="Reject selected deposits", permission="handle", done="Rejected",
                      call=lambda d, user, reason: services.deposit_reject(deposit=d, acting_user=user, reason=reason)),
    ]
    has_handle_permission = perm_checker(HANDLE_DEPOSIT)

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("accounts.add_deposit")

    def create_through_service(self, request, data):
        return services.deposit_request(acting_user=request.user, **data)


@admin.register(Withdrawal)
class WithdrawalAdmin(FundingAdmin):
    """Approvals follow the four-eyes rule of ``services.withdrawal_approve``: never the requester, and above
    the asset's threshold two different approvers."""

    list_display = ["id", "account", "asset", "amount", "status", "requires_four_eyes", "approvals",
                    "requested_by", "created_at"]
    list_filter = ["status", "requires_four_eyes", "asset"]
    list_select_related = ["account", "requested_by", "approved_by", "second_approved_by"]
    actions = [
        service_action(name="approve", description="Approve selected withdrawals", permission="approve",
                       call=lambda w, user: services.withdrawal_approve(withdrawal=w, acting_user=user),
                       done="Approvals recorded"),
        service_action(name="complete", description="Mark selected withdrawals as sent (debits the client)",
                       permission="handle", done="Completed",
                       call=lambda w, user: services.withdrawal_complete(withdrawal=w, acting_user=user)),
        reason_action(name="reject", description="Reject selected withdrawals (releases the hold)",
                      permission="approve", done="Rejected",
                      call=lambda w, user, reason: services.withdrawal_reject(withdrawal=w, acting_user=user,
                                                                              reason=reason)),
    ]
    has_approve_permission = perm_checker(APPROVE_WITHDRAWAL)
    has_handle_permission = perm_checker(HANDLE_WITHDRAWAL)

    @admin.display(description="approvals")
    def approvals(self, obj):
        names = [str(u) for u in (obj.approved_by, obj.second_approved_by) if u is not None]
        needed = 2 if obj.requires_four_eyes else 1
        return f"{len(names)}/{needed}" + (f" ({', '.join(names)})" if names else "")


# --- withdrawal address book --------------------------------------------------------------------------------


class WithdrawalDestinationForm(forms.Form):
    account = forms.ModelChoiceField(queryset=ClientAccount.objects.all())
    asset = forms.ModelChoiceField(queryset=Asset.objects.all())
    address = forms.CharField(max_length=128, help_text="Blockchain address, or bank reference for fiat.")
    label = forms.CharField(max_length=100, required=False)


@admin.register(WithdrawalDestination)
class WithdrawalDestinationAdmin(ServiceAddMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "account", "asset", "address", "label", "usable_from", "added_by", "removed_at"]
    list_filter = ["asset"]
    search_fields = ["address", "label", "account__legal_name", "account__id__exact"]
    list_select_related = ["account", "added_by"]
    add_form = WithdrawalDestinationForm
    add_intro = "Withdrawals to a new destination are refused until its cool-off has passed."
    actions = [
        service_action(name="remove", description="Remove selected destinations from the address book",
                       permission="manage", done="Removed",
                       call=lambda d, user: services.withdrawal_destination_remove(destination=d, acting_user=user)),
    ]
    has_manage_permission = perm_checker(MANAGE_DESTINATIONS)

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("accounts.add_withdrawaldestination")

    def create_through_service(self, request, data):
        return services.withdrawal_destination_add(acting_user=request.user, **data)
