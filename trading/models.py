"""Markets, orders and fills. Order rows are the queue of record for the matcher."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.models import AMOUNT


class MarketStatus(models.TextChoices):
    OPEN = "open", "Open"
    HALTED = "halted", "Halted"
    CANCEL_ONLY = "cancel_only", "Cancel only"


class Market(models.Model):
    symbol = models.CharField(max_length=24, unique=True)
    base = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    quote = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    tick_size = models.DecimalField(**AMOUNT)
    lot_size = models.DecimalField(**AMOUNT)
    min_size = models.DecimalField(**AMOUNT)
    max_size = models.DecimalField(**AMOUNT)
    status = models.CharField(max_length=12, choices=MarketStatus.choices, default=MarketStatus.OPEN)
    maker_fee_rate = models.DecimalField(max_digits=10, decimal_places=8, default=Decimal("0.001"))
    taker_fee_rate = models.DecimalField(max_digits=10, decimal_places=8, default=Decimal("0.002"))
    match_seq = models.BigIntegerField(
        default=0, editable=False, help_text="Matcher batches committed; a worker's in-memory book is this old."
    )
    cancel_seq = models.BigIntegerField(
        default=0, editable=False, help_text="Cancels of resting orders; each stamps the order with its number."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        permissions = [("halt_market", "Can halt, set cancel-only and reopen markets")]
        constraints = [
            models.CheckConstraint(condition=~Q(base=F("quote")), name="market_base_differs_from_quote"),
            models.CheckConstraint(
                condition=Q(tick_size__gt=0) & Q(lot_size__gt=0) & Q(min_size__gt=0) & Q(max_size__gte=F("min_size")),
                name="market_sizes_positive",
            ),
            models.CheckConstraint(
                condition=Q(maker_fee_rate__gte=0) & Q(taker_fee_rate__gte=0), name="market_fees_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.symbol


class FeeSchedule(models.Model):
    """Fee rates for a client tier, on one market or (market empty) on every market."""

    tier = models.CharField(max_length=12)
    market = models.ForeignKey(Market, null=True, blank=True, on_delete=models.CASCADE, related_name="fee_schedules")
    maker_fee_rate = models.DecimalField(max_digits=10, decimal_places=8)
    taker_fee_rate = models.DecimalField(max_digits=10, decimal_places=8)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tier", "market"], name="fee_schedule_unique_tier_market"),
            models.CheckConstraint(
                condition=Q(maker_fee_rate__gte=0) & Q(taker_fee_rate__gte=0), name="fee_schedule_non_negative"
            ),
        ]


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderType(models.TextChoices):
    LIMIT = "limit", "Limit"
    MARKET = "market", "Market"


class TimeInForce(models.TextChoices):
    GTC = "gtc", "Good till cancelled"
    IOC = "ioc", "Immediate or cancel"
    FOK = "fok", "Fill or kill"


class SelfTradePrevention(models.TextChoices):
    CANCEL_NEWEST = "cancel_newest", "Cancel newest"
    CANCEL_OLDEST = "cancel_oldest", "Cancel oldest"


class OrderStatus(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"


OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


class Order(models.Model):
    # account and market lookups use the composite indexes in Meta; single-column ones only slow every write.
    account = models.ForeignKey(
        "accounts.ClientAccount", on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="orders", db_index=False)
    client_order_id = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=6, choices=OrderType.choices)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC)
    post_only = models.BooleanField(default=False)
    stp = models.CharField(
        max_length=14, choices=SelfTradePrevention.choices, default=SelfTradePrevention.CANCEL_NEWEST
    )
    price = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="Limit price; empty for market orders.")
    size = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="Base quantity.")
    funds = models.DecimalField(
        **AMOUNT, null=True, blank=True, help_text="Quote budget incl. fees, for market buys given by funds."
    )
    filled_size = models.DecimalField(**AMOUNT, default=Decimal(0))
    filled_quote = models.DecimalField(**AMOUNT, default=Decimal(0))
    fees_paid = models.DecimalField(**AMOUNT, default=Decimal(0), help_text="Exact fees accrued (notional x rate).")
    settled_quote = models.DecimalField(
        **AMOUNT, default=Decimal(0), help_text="Quote moved in the ledger: paid incl. fees (buy), received net (sell)."
    )
    maker_fee_rate = models.DecimalField(max_digits=10, decimal_places=8, default=Decimal(0))
    taker_fee_rate = models.DecimalField(max_digits=10, decimal_places=8, default=Decimal(0))
    cancel_seq = models.BigIntegerField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.NEW)
    reason = models.CharField(max_length=64, blank=True, help_text="Why rejected or cancelled.")
    hold = models.OneToOneField("ledger.Hold", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["market", "id"], name="order_market_new", condition=Q(status="new")
            ),
            models.Index(
                fields=["market", "side", "price", "id"],
                name="order_market_resting",
                condition=Q(status__in=["open", "partially_filled"]),
            ),
            models.Index(fields=["account", "status"], name="order_account_status"),
            models.Index(
                fields=["market", "cancel_seq"], name="order_market_cancel_seq", condition=Q(cancel_seq__isnull=False)
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["account", "client_order_id"], name="order_client_order_id_unique"),
            models.CheckConstraint(condition=Q(filled_size__gte=0), name="order_filled_non_negative"),
            models.CheckConstraint(
                condition=Q(size__isnull=True) | Q(filled_size__lte=F("size")), name="order_not_overfilled"
            ),
            models.CheckConstraint(
                condition=Q(size__isnull=False) | Q(funds__isnull=False), name="order_has_size_or_funds"
            ),
            models.CheckConstraint(
                condition=Q(type="market") | Q(price__isnull=False), name="order_limit_has_price"
            ),
        ]

    def __str__(self) -> str:
        return f"order #{self.pk} {self.side} {self.size} {self.market_id} @ {self.price}"


class Fill(models.Model):
    """One match between a resting (maker) and an incoming (taker) order; settled by exactly one entry.

    The firm's fee revenue of the fill is ``buyer_quote - seller_quote`` (see ``trading.fill_amounts``).
    """

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="fills", db_index=False)  # fill_market_recent
    maker_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="maker_fills")
    taker_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="taker_fills")
    maker_account = models.ForeignKey("accounts.ClientAccount", on_delete=models.PROTECT, related_name="+")
    taker_account = models.ForeignKey("accounts.ClientAccount", on_delete=models.PROTECT, related_name="+")
    price = models.DecimalField(**AMOUNT)
    size = models.DecimalField(**AMOUNT)
    quote_amount = models.DecimalField(**AMOUNT, help_text="Exact notional, price x size.")
    maker_fee = models.DecimalField(**AMOUNT, help_text="Exact fee accrued by the maker (notional x rate).")
    taker_fee = models.DecimalField(**AMOUNT, help_text="Exact fee accrued by the taker (notional x rate).")
    buyer_quote = models.DecimalField(**AMOUNT, help_text="Quote debited to the buyer, fees included.")
    seller_quote = models.DecimalField(**AMOUNT, help_text="Quote credited to the seller, net of fees.")
    aggressor_side = models.CharField(max_length=4, choices=Side.choices)
    entry = models.OneToOneField("ledger.JournalEntry", on_delete=models.PROTECT, related_name="fill")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["market", "-id"], name="fill_market_recent")]
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0) & Q(price__gt=0), name="fill_positive"),
            models.CheckConstraint(condition=~Q(maker_order=F("taker_order")), name="fill_distinct_orders"),
            models.CheckConstraint(
                condition=Q(seller_quote__gte=0) & Q(buyer_quote__gte=F("seller_quote")), name="fill_fee_non_negative"
            ),
        ]
