"""Markets, orders and fills in the operations console. Cancelling orders and halting markets go through
``trading.services``, the same code as the API, which releases holds and writes the audit log."""

from __future__ import annotations

from django.contrib import admin

from audit.admin_kit import AuditedModelAdmin
from core.admin_kit import ReadOnlyAdminMixin, perm_checker, service_action
from ledger.templatetags.console_format import amount as fmt_amount
from trading import services
from trading.models import FeeSchedule, Fill, Market, MarketStatus, Order

HALT_MARKET = "trading.halt_market"
CANCEL_ORDERS = "trading.change_order"


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
        service_action(name="reopen", description="Reopen selected markets", permission="halt",
                       call=_set_status(MarketStatus.OPEN), done="Reopened"),
    ]
    has_halt_permission = perm_checker(HALT_MARKET)

    def get_readonly_fields(self, request, obj=None):
        # A market's assets and sizes are fixed once orders may rest on it; fees remain adjustable.
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "symbol", "base", "quote", "tick_size", "lot_size"]


@admin.register(FeeSchedule)
class FeeScheduleAdmin(AuditedModelAdmin):
    list_display = ["tier", "market", "maker_fee_rate", "taker_fee_rate"]
    list_filter = ["tier", "market"]


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
