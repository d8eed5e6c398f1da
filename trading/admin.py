"""Markets, orders and fills in the operations console. Cancelling orders and halting markets go through
``trading.services``, the same code as the API, which releases holds and writes the audit log. Fee rates and
market parameters change only through four-eyes proposals (``ParameterChange``): proposed by one supervisor,
applied when another approves."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import ClientAccount, Tier
from audit.admin_kit import AuditedModelAdmin
from core.admin_kit import (
    DomainErrorsAsMessagesMixin,
    MakerCheckerAdminMixin,
    NoDeleteMixin,
    ReadOnlyAdminMixin,
    ServiceAddMixin,
    perm_checker,
    reason_action,
    service_action,
)
from ledger.models import Asset
from ledger.templatetags.console_format import amount as fmt_amount
from trading import services
from trading.models import (
    AccountTradingControl,
    Conversion,
    ConversionLimit,
    FeeSchedule,
    Fill,
    InventoryFunding,
    InventoryLimit,
    Market,
    MarketPricing,
    MarketStatus,
    Order,
    ParameterChange,
    Quote,
    QuoteSpread,
    SpreadChange,
    fee_rate_validate,
)
from trading.services import quotes

HALT_MARKET = "trading.halt_market"
CANCEL_ORDERS = "trading.change_order"
APPROVE_PARAMETER_CHANGE = "trading.approve_parameterchange"
KILL_SWITCH = "trading.kill_switch"


def _set_status(status: str):
    def call(market, acting_user):
        return services.market_status_set(market=market, status=status, acting_user=acting_user)

    return call


def _cancel(order, acting_user):
    return services.order_cancel(order=order, acting_user=acting_user, reason=services.CANCELLED_BY_OPERATIONS)


@admin.register(Market)
class MarketAdmin(AuditedModelAdmin):
    list_display = ["symbol", "status", "base", "quote", "tick_size", "lot_size", "min_size", "max_size",
                    "maker_fee_rate", "taker_fee_rate"]
    list_filter = ["status"]
    search_fields = ["symbol"]
    readonly_fields = ["status", "created_at", "updated_at"]
    actions = [
        service_action(name="halt", description="Halt selected markets (stops matching now)", permission="halt",
                       call=_set_status(MarketStatus.HALTED), done="Halted"),
        service_action(name="cancel_only", description="Set selected markets to cancel-only", permission="halt",
                       call=_set_status(MarketStatus.CANCEL_ONLY), done="Set to cancel-only"),
        service_action(name="limit_only", description="Set selected markets to limit-only (no market orders)",
                       permission="halt", call=_set_status(MarketStatus.LIMIT_ONLY), done="Set to limit-only"),
        service_action(name="post_only", description="Set selected markets to post-only (makers only)",
                       permission="halt", call=_set_status(MarketStatus.POST_ONLY), done="Set to post-only"),
        service_action(name="reopen", description="Reopen selected markets", permission="halt",
                       call=_set_status(MarketStatus.OPEN), done="Reopened"),
    ]
    has_halt_permission = perm_checker(HALT_MARKET)

    def get_readonly_fields(self, request, obj=None):
        # Once it exists, a market's assets, tick and lot are fixed, and its fees and sizes change only through
        # a four-eyes proposal ("propose a change" below): nothing is edited here.
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "symbol", "base", "quote", "tick_size", "lot_size", "min_size", "max_size",
                "maker_fee_rate", "taker_fee_rate", *services.RISK_FIELDS, "propose_change"]

    @admin.display(description="fees, sizes and risk limits")
    def propose_change(self, obj):
        url = reverse("admin:trading_parameterchange_add") + f"?market={obj.pk}"
        return format_html('<a href="{}" id="propose-market-change">Propose a change</a> (another supervisor '
                           "approves it before it applies)", url)


@admin.register(FeeSchedule)
class FeeScheduleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Fee schedules change only through four-eyes proposals (``ParameterChange``)."""

    list_display = ["tier", "market", "maker_fee_rate", "taker_fee_rate"]
    list_filter = ["tier", "market"]


class ParameterChangeForm(forms.Form):
    market = forms.ModelChoiceField(queryset=Market.objects.all(), required=False,
                                    help_text="Empty with a tier: that tier's fees on every market.")
    tier = forms.ChoiceField(choices=[("", "- the market's own parameters -"), *Tier.choices], required=False,
                             help_text="Set: change that tier's fee schedule instead of the market.")
    maker_fee_rate = forms.DecimalField(max_digits=10, decimal_places=8, required=False,
                                        validators=[fee_rate_validate], help_text="0 to 0.05 (5%).")
    taker_fee_rate = forms.DecimalField(max_digits=10, decimal_places=8, required=False,
                                        validators=[fee_rate_validate], help_text="0 to 0.05 (5%).")
    min_size = forms.DecimalField(max_digits=38, decimal_places=18, required=False,
                                  help_text="Market parameters only.")
    max_size = forms.DecimalField(max_digits=38, decimal_places=18, required=False,
                                  help_text="Market parameters only.")
    price_collar_bps = forms.DecimalField(max_digits=12, decimal_places=4, required=False,
                                          label="Price collar (bps)",
                                          help_text="Risk limit: a taker more than this far through the mid (else "
                                                    "the last trade) is refused; 1500 = 15%.")
    max_market_order_notional = forms.DecimalField(max_digits=38, decimal_places=18, required=False,
                                                   help_text="Risk limit, quote asset.")
    max_limit_order_notional = forms.DecimalField(max_digits=38, decimal_places=18, required=False,
                                                  help_text="Risk limit, quote asset.")
    max_daily_notional = forms.DecimalField(max_digits=38, decimal_places=18, required=False,
                                            help_text="Risk limit per client, quote asset, rolling 24 hours.")
    max_open_orders = forms.IntegerField(min_value=1, required=False, help_text="Risk limit per client.")
    remove_limits = forms.MultipleChoiceField(
        choices=[(name, name) for name in services.RISK_FIELDS], required=False,
        widget=forms.CheckboxSelectMultiple, help_text="Risk limits to remove (no limit).")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


def _approve_change(change, acting_user):
    return services.parameter_change_approve(change=change, acting_user=acting_user)


def _reject_change(change, acting_user, reason):
    return services.parameter_change_reject(change=change, acting_user=acting_user, reason=reason)


@admin.register(ParameterChange)
class ParameterChangeAdmin(MakerCheckerAdminMixin, ServiceAddMixin, NoDeleteMixin, admin.ModelAdmin):
    """Proposed by one supervisor, approved or rejected by another (``trading.services.parameters``): with the
    list's actions or the decision box on the change's page."""

    add_form = ParameterChangeForm
    add_intro = ("Fee rates, market sizes and pre-trade risk limits change only when another supervisor approves. "
                 "Fill in the values that change; fee rates are at most 0.05 (5%).")
    list_display = ["id", "target", "values", "before", "status", "proposed_by", "proposed_at", "decided_by"]
    list_filter = ["status", "tier", "market"]
    list_select_related = ["market", "proposed_by", "decided_by"]
    fields = ["target", "values", "before", "reason", "status", "proposed_by", "proposed_at", "decided_by",
              "decided_at", "decision_reason"]
    readonly_fields = fields
    actions = [
        service_action(name="approve_selected", description="Approve selected changes (applies them)",
                       permission="approve", call=_approve_change, done="Approved and applied"),
        reason_action(name="reject_selected", description="Reject selected changes", permission="approve",
                      call=_reject_change, done="Rejected"),
    ]
    decision_permission = APPROVE_PARAMETER_CHANGE
    approve_label = "Approve and apply"

    def approve(self, obj, acting_user):
        return _approve_change(obj, acting_user)

    def reject(self, obj, acting_user, reason):
        return _reject_change(obj, acting_user, reason)

    def has_change_permission(self, request, obj=None):
        return False  # decided through approve and reject only

    @admin.display(description="change of")
    def target(self, obj):
        return f"{obj.tier} fees on {obj.market or 'all markets'}" if obj.tier else str(obj.market)

    def create_through_service(self, request, data):
        values = {name: data[name] for name in services.MARKET_FIELDS if data.get(name) is not None}
        values.update({name: None for name in data.get("remove_limits") or ()})
        return services.parameter_change_propose(market=data["market"], tier=data["tier"], values=values,
                                                 reason=data["reason"], acting_user=request.user)

    def created_message(self, obj):
        return f"Change #{obj.pk} proposed; another supervisor must approve it before it applies."


def _engage(control, acting_user, reason):
    return services.kill_switch_engage(account=control.account, acting_user=acting_user, reason=reason)


def _release(control, acting_user, reason):
    return services.kill_switch_release(account=control.account, acting_user=acting_user, reason=reason)


class KillSwitchForm(forms.Form):
    account = forms.ModelChoiceField(queryset=ClientAccount.objects.all())
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Shown to the client with the switch.")


@admin.register(AccountTradingControl)
class AccountTradingControlAdmin(ServiceAddMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Clients' kill switches and dead-man switches (``trading.services.controls``). "Add" engages a client's
    kill switch: every open order is cancelled and new ones refused until someone with the permission releases
    it."""

    add_form = KillSwitchForm
    add_intro = ("Engaging a client's kill switch cancels every open order of the account (holds released) and "
                 "refuses new orders until it is released. The client's admin cannot release a switch engaged here.")
    list_display = ["account", "kill_switch", "kill_switch_by", "kill_switch_reason", "kill_switch_at",
                    "cancel_after", "cancel_after_timeout"]
    list_filter = ["kill_switch", "kill_switch_by"]
    search_fields = ["account__legal_name", "account__id__exact"]
    list_select_related = ["account"]
    actions = [
        reason_action(name="engage_kill_switch", description="Engage the kill switch (cancel all, block orders)",
                      permission="kill", call=_engage, done="Kill switch engaged"),
        reason_action(name="release_kill_switch", description="Release the kill switch", permission="kill",
                      call=_release, done="Kill switch released"),
    ]
    has_kill_permission = perm_checker(KILL_SWITCH)

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm(KILL_SWITCH)

    def create_through_service(self, request, data):
        return services.kill_switch_engage(account=data["account"], acting_user=request.user, reason=data["reason"])

    def created_message(self, obj):
        return f"Kill switch of {obj.account} engaged: its open orders are cancelled and new ones refused."


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "account", "market", "client_order_id", "side", "type", "price_display", "size_display",
                    "filled_display", "status", "reason", "created_at"]
    list_filter = ["status", "market", "side", "type", "time_in_force"]
    search_fields = ["client_order_id", "account__legal_name", "account__id__exact", "market__symbol", "id__exact"]
    list_select_related = ["account", "market"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = [
        service_action(name="cancel_orders", description="Cancel selected orders (releases their holds)",
                       permission="cancel", call=_cancel, done="Cancelled"),
    ]
    has_cancel_permission = perm_checker(CANCEL_ORDERS)

    @admin.display(description="price", ordering="price")
    def price_display(self, obj):
        return fmt_amount(obj.price) if obj.price is not None else "market"

    @admin.display(description="size", ordering="size")
    def size_display(self, obj):
        return fmt_amount(obj.size) if obj.size is not None else f"funds {fmt_amount(obj.funds)}"

    @admin.display(description="filled", ordering="filled_size")
    def filled_display(self, obj):
        return fmt_amount(obj.filled_size)


@admin.register(Fill)
class FillAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "market", "price", "size", "quote_amount", "aggressor_side", "maker_order", "taker_order",
                    "maker_fee", "taker_fee", "created_at"]
    list_filter = ["market", "aggressor_side"]
    search_fields = ["id__exact", "market__symbol", "maker_order__client_order_id", "taker_order__client_order_id",
                     "maker_order__account__legal_name", "taker_order__account__legal_name",
                     "maker_order__id__exact", "taker_order__id__exact"]
    list_select_related = ["market", "maker_order", "taker_order"]
    date_hierarchy = "created_at"
    show_full_result_count = False


# --- held-rate quotes, the firm's inventory and conversions (trading.services.quotes, trading.services.conversions) ------------

APPROVE_SPREAD = "trading.approve_spreadchange"


@admin.register(Quote)
class QuoteAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "account", "market", "side", "size", "price", "total", "spread_bps", "reference_source",
                    "status", "created_at", "expires_at", "executed_at"]
    list_filter = ["status", "market", "side", "reference_source"]
    search_fields = ["id__exact", "account__legal_name", "account__id__exact", "market__symbol"]
    list_select_related = ["account", "market"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(Conversion)
class ConversionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "account", "from_asset", "to_asset", "amount", "created_at", "entry"]
    list_filter = ["from_asset", "to_asset"]
    search_fields = ["id__exact", "account__legal_name", "account__id__exact", "idempotency_key"]
    list_select_related = ["account", "entry"]
    date_hierarchy = "created_at"


@admin.register(QuoteSpread)
class QuoteSpreadAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The live spreads; changed only through an approved spread change."""

    list_display = ["tier", "market", "spread_bps", "change", "updated_at"]
    list_filter = ["tier", "market"]


class SpreadChangeForm(forms.Form):
    tier = forms.ChoiceField(choices=Tier.choices)
    market = forms.ModelChoiceField(queryset=Market.objects.all(), required=False,
                                    help_text="Empty: every market without a spread of its own for this tier.")
    spread_bps = forms.DecimalField(max_digits=12, decimal_places=4, min_value=0, label="Spread (bps)")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


def _approve_spread(change, acting_user):
    return quotes.spread_change_approve(change=change, acting_user=acting_user)


def _reject_spread(change, acting_user, reason):
    return quotes.spread_change_reject(change=change, acting_user=acting_user, reason=reason)


@admin.register(SpreadChange)
class SpreadChangeAdmin(MakerCheckerAdminMixin, ServiceAddMixin, admin.ModelAdmin):
    """Spreads per client tier and market under maker-checker: proposed by one user, applied when another user
    with ``trading.approve_spreadchange`` approves it (``trading.services.quotes``)."""

    add_form = SpreadChangeForm
    add_intro = "The spread applies to new quotes only when another staff user with the approve permission approves it."
    list_display = ["id", "tier", "market", "spread_bps", "previous_bps", "status", "proposed_by", "proposed_at",
                    "decided_by"]
    list_filter = ["status", "tier", "market"]
    list_select_related = ["market", "proposed_by", "decided_by"]
    fields = ["tier", "market", "spread_bps", "previous_bps", "reason", "status", "proposed_by", "proposed_at",
              "decided_by", "decided_at", "decision_reason"]
    actions = [
        service_action(name="approve_selected", description="Approve selected spread changes (applies them)",
                       permission="approve", call=_approve_spread, done="Approved and applied"),
        reason_action(name="reject_selected", description="Reject selected spread changes", permission="approve",
                      call=_reject_spread, done="Rejected"),
    ]
    decision_permission = APPROVE_SPREAD
    approve_label = "Approve and apply"

    def approve(self, obj, acting_user):
        return _approve_spread(obj, acting_user)

    def reject(self, obj, acting_user, reason):
        return _reject_spread(obj, acting_user, reason)

    def has_change_permission(self, request, obj=None):
        return False  # decided through approve/reject only

    def has_delete_permission(self, request, obj=None):
        return False

    def create_through_service(self, request, data):
        return quotes.spread_change_propose(acting_user=request.user, **data)

    def created_message(self, obj):
        return f"Spread change #{obj.pk} proposed; another user must approve it before it applies."


@admin.register(MarketPricing)
class MarketPricingAdmin(DomainErrorsAsMessagesMixin, NoDeleteMixin, admin.ModelAdmin):
    """A market's fallback price, skew and tolerance; saved through ``quotes.market_pricing_set`` (audited, the
    fallback stamped with the time it was set)."""

    list_display = ["market", "fallback_price", "fallback_set_at", "skew_bps", "tolerance_bps", "updated_at"]
    fields = ["market", "fallback_price", "fallback_set_at", "skew_bps", "tolerance_bps"]
    readonly_fields = ["fallback_set_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "market"] if obj else self.readonly_fields

    def get_changeform_initial_data(self, request):
        return {"tolerance_bps": settings.QUOTE_EXECUTION_TOLERANCE_BPS, **super().get_changeform_initial_data(request)}

    def save_model(self, request, obj, form, change):
        # Only what the form changed: saving the skew must not re-stamp (and so refresh) the fallback price.
        changed = {name: form.cleaned_data.get(name) for name in ("fallback_price", "skew_bps", "tolerance_bps")
                   if not change or name in form.changed_data}
        saved = quotes.market_pricing_set(market=obj.market, acting_user=request.user, **changed)
        obj.pk, obj._state.adding = saved.pk, False


@admin.register(InventoryLimit)
class InventoryLimitAdmin(AuditedModelAdmin):
    list_display = ["asset", "max_long", "max_short"]


@admin.register(ConversionLimit)
class ConversionLimitAdmin(AuditedModelAdmin):
    list_display = ["account", "daily_limit"]
    search_fields = ["account__legal_name", "account__id__exact"]
    raw_id_fields = ["account"]

    def audit_account(self, obj):
        return obj.account


class InventoryFundingForm(forms.Form):
    asset = forms.ModelChoiceField(queryset=Asset.objects.all())
    amount = forms.DecimalField(
        max_digits=38, decimal_places=18,
        help_text="Positive: the firm's own assets into custody for the inventory; negative: out of it.")
    reference = forms.CharField(max_length=128, help_text="The transfer's reference (tx hash, bank reference).")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


@admin.register(InventoryFunding)
class InventoryFundingAdmin(ServiceAddMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    add_form = InventoryFundingForm
    add_intro = "Posts one entry between custody and the firm's inventory; the position must stay within its limits."
    list_display = ["id", "asset", "amount", "reference", "reason", "created_by", "created_at", "entry"]
    list_filter = ["asset"]
    search_fields = ["reference", "reason"]

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("trading.add_inventoryfunding")

    def create_through_service(self, request, data):
        return quotes.inventory_fund(acting_user=request.user, **data)
