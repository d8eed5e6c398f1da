"""Markets, orders and fills. Order rows are the queue of record for the matcher."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from core.models import AMOUNT
from trading.errors import Code

# The highest maker or taker fee rate (5%): refused above by validation (``fee_rate_out_of_range``) and by the
# database. A seller's rate above 1 would make a fill pay the seller a negative amount (issue 18).
MAX_FEE_RATE = Decimal("0.05")


def fee_rate_validate(value) -> None:
    if value is not None and not (0 <= value <= MAX_FEE_RATE):
        raise ValidationError(f"A fee rate must be between 0 and {MAX_FEE_RATE} (5%).", code=Code.FEE_RATE_OUT_OF_RANGE)


def _fee_rates_bounded() -> Q:
    return Q(maker_fee_rate__gte=0, maker_fee_rate__lte=MAX_FEE_RATE, taker_fee_rate__gte=0,
             taker_fee_rate__lte=MAX_FEE_RATE)


class MarketStatus(models.TextChoices):
    OPEN = "open", "Open"
    LIMIT_ONLY = "limit_only", "Limit only"
    POST_ONLY = "post_only", "Post only"
    HALTED = "halted", "Halted"
    CANCEL_ONLY = "cancel_only", "Cancel only"


# The statuses in which the matcher matches and orders may be placed (``limit_only`` and ``post_only`` refuse
# some orders at placement: trading.services.risk).
TRADING_STATUSES = (MarketStatus.OPEN, MarketStatus.LIMIT_ONLY, MarketStatus.POST_ONLY)
BPS_FIELD = {"max_digits": 12, "decimal_places": 4}
MAX_COLLAR_BPS = Decimal(10000)


def _risk_limits_valid() -> Q:
    return (
        (Q(price_collar_bps__isnull=True) | Q(price_collar_bps__gt=0, price_collar_bps__lte=MAX_COLLAR_BPS))
        & (Q(max_market_order_notional__isnull=True) | Q(max_market_order_notional__gt=0))
        & (Q(max_limit_order_notional__isnull=True) | Q(max_limit_order_notional__gt=0))
        & (Q(max_daily_notional__isnull=True) | Q(max_daily_notional__gt=0))
        & (Q(max_open_orders__isnull=True) | Q(max_open_orders__gt=0))
    )


class Market(models.Model):
    symbol = models.CharField(max_length=24, unique=True)
    base = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    quote = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    tick_size = models.DecimalField(**AMOUNT)
    lot_size = models.DecimalField(**AMOUNT)
    min_size = models.DecimalField(**AMOUNT)
    max_size = models.DecimalField(**AMOUNT)
    status = models.CharField(max_length=12, choices=MarketStatus.choices, default=MarketStatus.OPEN)
    maker_fee_rate = models.DecimalField(max_digits=10, decimal_places=8, default=Decimal("0.001"),
                                         validators=[fee_rate_validate])
    taker_fee_rate = models.DecimalField(max_digits=10, decimal_places=8, default=Decimal("0.002"),
                                         validators=[fee_rate_validate])
    # Pre-trade risk limits (trading.services.risk), changed only through four-eyes proposals; empty: no limit.
    price_collar_bps = models.DecimalField(
        **BPS_FIELD, null=True, blank=True,
        help_text="A taker priced more than this many bps through the mid (else the last trade) is refused.")
    max_market_order_notional = models.DecimalField(
        **AMOUNT, null=True, blank=True, help_text="Largest notional (quote asset) of one market order.")
    max_limit_order_notional = models.DecimalField(
        **AMOUNT, null=True, blank=True, help_text="Largest notional (quote asset) of one limit order.")
    max_daily_notional = models.DecimalField(
        **AMOUNT, null=True, blank=True,
        help_text="Largest notional (quote asset) one client may trade or commit here in 24 hours (rolling).")
    max_open_orders = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most open orders one client may have in this market.")
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
            models.CheckConstraint(condition=_fee_rates_bounded(), name="market_fee_rates_bounded"),
            models.CheckConstraint(condition=_risk_limits_valid(), name="market_risk_limits_valid"),
        ]

    def __str__(self) -> str:
        return self.symbol

    @property
    def book_sequence(self) -> int:
        """The book's version (README "Streams"): every transaction that changes the resting book bumps exactly
        one of the two counters by one under the market lock (a matcher batch ``match_seq``, a cancel of resting
        orders ``cancel_seq``), so their sum counts book changes. Level 2 updates and the REST book carry it."""
        return self.match_seq + self.cancel_seq


class FeeSchedule(models.Model):
    """Fee rates for a client tier, on one market or (market empty) on every market."""

    tier = models.CharField(max_length=12)
    market = models.ForeignKey(Market, null=True, blank=True, on_delete=models.CASCADE, related_name="fee_schedules")
    maker_fee_rate = models.DecimalField(max_digits=10, decimal_places=8, validators=[fee_rate_validate])
    taker_fee_rate = models.DecimalField(max_digits=10, decimal_places=8, validators=[fee_rate_validate])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tier", "market"], name="fee_schedule_unique_tier_market"),
            models.CheckConstraint(condition=_fee_rates_bounded(), name="fee_schedule_rates_bounded"),
        ]

    def __str__(self) -> str:
        return f"{self.tier} fees on {self.market or 'all markets'}"


class ParameterChangeStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved and applied"
    REJECTED = "rejected", "Rejected"


class ParameterChange(models.Model):
    """A change of a market's fee rates or sizes, or of a tier's fee schedule, under four eyes: one staff user
    proposes it, another approves it and only then does it apply (``trading.services.parameters``).

    With a ``tier`` it sets that tier's fee schedule on ``market`` (on every market when ``market`` is empty);
    without one, the market's own parameters. ``values`` holds the new values as decimal strings, ``before``
    what they were when it was proposed."""

    market = models.ForeignKey(Market, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    tier = models.CharField(max_length=12, blank=True)
    values = models.JSONField()
    before = models.JSONField(null=True, blank=True)
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=ParameterChangeStatus.choices,
                              default=ParameterChangeStatus.PROPOSED)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("approve_parameterchange", "Can approve a fee-rate or market-parameter change proposed by someone else")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("proposed_by")),
                name="parameter_change_four_eyes",
            ),
            models.CheckConstraint(condition=~Q(tier="") | Q(market__isnull=False), name="parameter_change_target"),
        ]

    def __str__(self) -> str:
        target = f"{self.tier} fees on {self.market or 'all markets'}" if self.tier else str(self.market)
        return f"change #{self.pk} of {target} ({self.status})"


class KillSwitchHolder(models.TextChoices):
    CLIENT = "client", "The client's admin"
    OPERATIONS = "operations", "Operations"


class AccountTradingControl(models.Model):
    """A client's own trading controls (README "Pre-trade risk"): the kill switch (every order cancelled, new ones
    refused until it is released) and the dead-man switch (every order cancelled when ``cancel_after`` passes
    without the client renewing it). An account without a row has neither."""

    account = models.OneToOneField("accounts.ClientAccount", on_delete=models.CASCADE, primary_key=True,
                                   related_name="trading_control")
    kill_switch = models.BooleanField(default=False)
    kill_switch_by = models.CharField(max_length=10, choices=KillSwitchHolder.choices, blank=True,
                                      help_text="Who engaged it: a client's admin may release only their own.")
    kill_switch_reason = models.CharField(max_length=500, blank=True)
    kill_switch_at = models.DateTimeField(null=True, blank=True)
    cancel_after = models.DateTimeField(null=True, blank=True,
                                        help_text="Dead-man switch: every open order is cancelled at this time.")
    cancel_after_timeout = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds, as last renewed.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "client trading control"
        permissions = [("kill_switch", "Can engage and release a client's kill switch")]
        indexes = [models.Index(fields=["cancel_after"], name="trading_control_cancel_after",
                                condition=Q(cancel_after__isnull=False))]
        constraints = [
            models.CheckConstraint(condition=Q(kill_switch=False) | ~Q(kill_switch_by=""),
                                   name="trading_control_kill_switch_holder"),
        ]

    def __str__(self) -> str:
        return f"trading controls of account #{self.account_id}"


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderType(models.TextChoices):
    LIMIT = "limit", "Limit"
    MARKET = "market", "Market"
    STOP = "stop", "Stop (market once triggered)"
    STOP_LIMIT = "stop_limit", "Stop-limit"


STOP_TYPES = (OrderType.STOP, OrderType.STOP_LIMIT)


class TimeInForce(models.TextChoices):
    GTC = "gtc", "Good till cancelled"
    IOC = "ioc", "Immediate or cancel"
    FOK = "fok", "Fill or kill"
    GTT = "gtt", "Good til time"


class SelfTradePrevention(models.TextChoices):
    CANCEL_NEWEST = "cancel_newest", "Cancel newest"
    CANCEL_OLDEST = "cancel_oldest", "Cancel oldest"
    CANCEL_BOTH = "cancel_both", "Cancel both"
    DECREMENT_AND_CANCEL = "decrement_and_cancel", "Decrement and cancel"


class OrderStatus(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"
    PENDING_TRIGGER = "pending_trigger", "Waiting for its stop price"
    EXPIRED = "expired", "Expired"


OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_TRIGGER)
RESTING_STATUSES = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)  # in the book


class Order(models.Model):
    # account and market lookups use the composite indexes in Meta; single-column ones only slow every write.
    account = models.ForeignKey(
        "accounts.ClientAccount", on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="orders", db_index=False)
    client_order_id = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=10, choices=OrderType.choices)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC)
    post_only = models.BooleanField(default=False)
    stp = models.CharField(
        max_length=20, choices=SelfTradePrevention.choices, default=SelfTradePrevention.CANCEL_NEWEST
    )
    price = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="Limit price; empty for market orders.")
    size = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="Base quantity.")
    funds = models.DecimalField(
        **AMOUNT, null=True, blank=True, help_text="Quote budget incl. fees, for market buys given by funds."
    )
    stop_price = models.DecimalField(
        **AMOUNT, null=True, blank=True, help_text="Stop orders: the last trade price that triggers them."
    )
    expire_time = models.DateTimeField(null=True, blank=True, help_text="Good-til-time orders: when they expire.")
    triggered_at = models.DateTimeField(null=True, blank=True, help_text="Stop orders: when they triggered.")
    book_priority = models.BigIntegerField(
        null=True, blank=True, editable=False,
        help_text="A triggered stop's time priority on the book (trading.engine.priority_of); else its id's.",
    )
    metadata = models.JSONField(default=dict, blank=True, help_text="The client's key/value pairs, echoed back.")
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by",
        help_text="The order this one replaced (an amend that lost priority).",
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
            models.Index(fields=["market", "id"], name="order_market_pending", condition=Q(status="pending_trigger")),
            models.Index(
                fields=["expire_time"], name="order_open_expiring",
                condition=Q(expire_time__isnull=False, status__in=["new", "open", "partially_filled", "pending_trigger"]),
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
                condition=Q(type__in=["market", "stop"]) | Q(price__isnull=False), name="order_limit_has_price"
            ),
            models.CheckConstraint(
                condition=(Q(type__in=["stop", "stop_limit"], stop_price__isnull=False)
                 | (~Q(type__in=["stop", "stop_limit"]) & Q(stop_price__isnull=True))),
                name="order_stop_has_stop_price",
            ),
            models.CheckConstraint(
                condition=Q(time_in_force="gtt", expire_time__isnull=False)
                | (~Q(time_in_force="gtt") & Q(expire_time__isnull=True)),
                name="order_gtt_has_expire_time",
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



class Candle(models.Model):
    """The fills of one market in one time bucket, rolled up (``trading.candles``): written by the matcher's batch
    in the transaction of its fills (``trading.sql.candles_upsert``), rebuilt by ``manage.py candles_backfill``.

    ``first_fill_id`` and ``last_fill_id`` say which fills gave the open and the close, so that merging a batch
    into a candle does not depend on the order the parts arrive in."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="+", db_index=False)  # candle_bucket
    granularity = models.PositiveIntegerField(help_text="Seconds: 60, 300, 900, 3600, 21600 or 86400.")
    start = models.DateTimeField(help_text="The bucket's first instant, a multiple of the granularity since the epoch.")
    open = models.DecimalField(**AMOUNT)
    high = models.DecimalField(**AMOUNT)
    low = models.DecimalField(**AMOUNT)
    close = models.DecimalField(**AMOUNT)
    volume = models.DecimalField(**AMOUNT, help_text="Base traded.")
    quote_volume = models.DecimalField(**AMOUNT, help_text="Exact notional traded, the sum of price x size.")
    trade_count = models.PositiveIntegerField()
    first_fill_id = models.BigIntegerField(help_text="The fill that gave the open.")
    last_fill_id = models.BigIntegerField(help_text="The fill that gave the close.")

    class Meta:
        constraints = [
            # Also the index of every read: a market's candles of one granularity, by start.
            models.UniqueConstraint(fields=["market", "granularity", "start"], name="candle_bucket"),
            models.CheckConstraint(condition=Q(granularity__in=[60, 300, 900, 3600, 21600, 86400]),
                                   name="candle_granularity_known"),
            models.CheckConstraint(
                condition=Q(low__gt=0) & Q(low__lte=F("open")) & Q(low__lte=F("close")) & Q(high__gte=F("open"))
                & Q(high__gte=F("close")) & Q(volume__gt=0) & Q(trade_count__gt=0),
                name="candle_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.market_id} {self.granularity}s candle at {self.start:%Y-%m-%d %H:%M}"

# --- held-rate quotes, the firm's inventory and stablecoin conversions (README "Quotes") ---------------------


class QuoteStatus(models.TextChoices):
    """A quote is ``open`` until executed; an open quote past its ``expires_at`` is expired (shown as such)."""

    OPEN = "open", "Open"
    EXECUTED = "executed", "Executed"


class Quote(models.Model):
    """A firm price for one size, held until ``expires_at``, executed at most once against the firm's inventory.

    It reserves nothing: the client's funds and the firm's exposure limits are checked again at execution.
    """

    account = models.ForeignKey("accounts.ClientAccount", on_delete=models.PROTECT, related_name="quotes")
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="quotes")
    side = models.CharField(max_length=4, choices=Side.choices, help_text="The client's side.")
    size = models.DecimalField(**AMOUNT, help_text="Base amount.")
    funds = models.DecimalField(**AMOUNT, null=True, blank=True,
                                help_text="The quote-asset total asked for, when the quote was asked by funds.")
    price = models.DecimalField(**AMOUNT, help_text="All-in price (spread included, fee excluded), on the tick.")
    reference_price = models.DecimalField(**AMOUNT, help_text="VWAP of the book to the size (or fallback).")
    reference_source = models.CharField(max_length=16)
    spread_bps = models.DecimalField(**BPS_FIELD)
    skew_bps = models.DecimalField(**BPS_FIELD, default=Decimal(0))
    fee_rate = models.DecimalField(max_digits=10, decimal_places=8)
    quote_amount = models.DecimalField(**AMOUNT, help_text="price x size at the quote asset's precision.")
    fee = models.DecimalField(**AMOUNT)
    total = models.DecimalField(**AMOUNT, help_text="Paid by the client (buy) or received (sell), fee included.")
    spread_captured = models.DecimalField(**AMOUNT, help_text="Principal P&L at the reference, quote asset.")
    status = models.CharField(max_length=8, choices=QuoteStatus.choices, default=QuoteStatus.OPEN)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    executed_at = models.DateTimeField(null=True, blank=True)
    execution_key = models.CharField(max_length=200, blank=True, help_text="Idempotency key of the execution.")
    # By the entry's key (``quote:<id>``), known before the entry is posted: the execution writes the quote row
    # first and the ledger's balances last (the foreign key is checked when the entry exists, before commit).
    entry = models.OneToOneField("ledger.JournalEntry", to_field="key", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="quote")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["executed_at"], name="quote_executed_at",
                                condition=Q(status="executed"))]
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0) & Q(price__gt=0) & Q(reference_price__gt=0),
                                   name="quote_positive"),
            models.CheckConstraint(condition=Q(fee__gte=0) & Q(total__gt=0), name="quote_total_positive"),
            models.CheckConstraint(
                condition=Q(status="open", entry__isnull=True, executed_at__isnull=True)
                | Q(status="executed", entry__isnull=False, executed_at__isnull=False),
                name="quote_executed_iff_entry",
            ),
        ]

    def __str__(self) -> str:
        return f"quote #{self.pk} {self.side} {self.size} {self.market_id} @ {self.price}"

    def status_at(self, at) -> str:
        return "expired" if self.status == QuoteStatus.OPEN and at >= self.expires_at else self.status


class QuoteSpread(models.Model):
    """The live spread of a client tier on one market or (market empty) on every market. Changed only by an
    approved ``SpreadChange``; a tier without one gets ``QUOTE_DEFAULT_SPREAD_BPS``."""

    tier = models.CharField(max_length=12)
    market = models.ForeignKey(Market, null=True, blank=True, on_delete=models.CASCADE, related_name="spreads")
    spread_bps = models.DecimalField(**BPS_FIELD)
    change = models.ForeignKey("SpreadChange", on_delete=models.PROTECT, related_name="+",
                               help_text="The approved change that set it.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tier", "market_id"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "market"], name="quote_spread_unique_tier_market"),
            models.UniqueConstraint(fields=["tier"], condition=Q(market__isnull=True),
                                    name="quote_spread_unique_tier_all_markets"),
            models.CheckConstraint(condition=Q(spread_bps__gte=0) & Q(spread_bps__lt=10000),
                                   name="quote_spread_in_range"),
        ]

    def __str__(self) -> str:
        return f"{self.tier} {self.market or 'all markets'}: {self.spread_bps} bps"


class ChangeStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved and applied"
    REJECTED = "rejected", "Rejected"


class SpreadChange(models.Model):
    """A proposed spread for a tier and market (maker-checker): applied only when another user approves it."""

    tier = models.CharField(max_length=12)
    market = models.ForeignKey(Market, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    spread_bps = models.DecimalField(**BPS_FIELD)
    previous_bps = models.DecimalField(**BPS_FIELD, null=True, blank=True,
                                       help_text="The spread it replaced, when approved (empty: the default).")
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=ChangeStatus.choices, default=ChangeStatus.PROPOSED)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("approve_spreadchange", "Can approve a spread change proposed by someone else")]
        constraints = [
            models.CheckConstraint(condition=Q(spread_bps__gte=0) & Q(spread_bps__lt=10000),
                                   name="spread_change_in_range"),
            models.CheckConstraint(condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("proposed_by")),
                                   name="spread_change_four_eyes"),
        ]

    def __str__(self) -> str:
        return f"spread change #{self.pk} {self.tier} {self.market or 'all markets'} {self.spread_bps} bps"


class MarketPricing(models.Model):
    """Operations' pricing controls of one market: the fallback reference price, the inventory skew and the
    execution tolerance. A market without a row uses the settings' defaults and has no fallback."""

    market = models.OneToOneField(Market, on_delete=models.CASCADE, related_name="pricing")
    fallback_price = models.DecimalField(**AMOUNT, null=True, blank=True,
                                         help_text="Reference price where the book is too thin (empty: none).")
    fallback_set_at = models.DateTimeField(null=True, blank=True)
    skew_bps = models.DecimalField(**BPS_FIELD, default=Decimal(0),
                                   help_text="Skew at a full inventory limit, in basis points (0: no skew).")
    tolerance_bps = models.DecimalField(**BPS_FIELD, help_text="How far the reference may move against the firm "
                                                               "between quote and execution.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "market pricing"
        constraints = [
            models.CheckConstraint(condition=Q(fallback_price__isnull=True) | Q(fallback_price__gt=0),
                                   name="market_pricing_fallback_positive"),
            models.CheckConstraint(condition=Q(skew_bps__gte=0) & Q(tolerance_bps__gte=0),
                                   name="market_pricing_non_negative"),
        ]

    def __str__(self) -> str:
        return f"pricing of {self.market}"


class InventoryLimit(models.Model):
    """The firm's exposure limits in one asset: its inventory position stays within ``-max_short .. max_long``.
    An asset without a row cannot be quoted or converted (fail safe)."""

    asset = models.OneToOneField("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    max_long = models.DecimalField(**AMOUNT)
    max_short = models.DecimalField(**AMOUNT, default=Decimal(0))

    class Meta:
        ordering = ["asset_id"]
        constraints = [models.CheckConstraint(condition=Q(max_long__gte=0) & Q(max_short__gte=0),
                                              name="inventory_limit_non_negative")]

    def __str__(self) -> str:
        return f"{self.asset_id}: -{self.max_short} .. {self.max_long}"


class InventoryFunding(models.Model):
    """The firm's own assets moved into (positive) or out of (negative) custody for the principal inventory."""

    asset = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**AMOUNT, help_text="Positive: into inventory; negative: out of it.")
    reference = models.CharField(max_length=128, unique=True, help_text="Transfer reference; makes it idempotent.")
    reason = models.CharField(max_length=500)
    entry = models.OneToOneField("ledger.JournalEntry", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="inventory_funding_nonzero")]


class ConversionLimit(models.Model):
    """A client's own daily conversion limit (rolling 24 hours), instead of ``CONVERSION_DAILY_LIMIT``."""

    account = models.OneToOneField("accounts.ClientAccount", on_delete=models.CASCADE,
                                   related_name="conversion_limit")
    daily_limit = models.DecimalField(**AMOUNT)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(daily_limit__gte=0), name="conversion_limit_non_negative")]

    def __str__(self) -> str:
        return f"{self.account}: {self.daily_limit} a day"


class Conversion(models.Model):
    """A 1:1 stablecoin conversion (e.g. USD to USDP), settled in one entry against the firm's inventory."""

    account = models.ForeignKey("accounts.ClientAccount", on_delete=models.PROTECT, related_name="conversions")
    from_asset = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    to_asset = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**AMOUNT)
    idempotency_key = models.CharField(max_length=200)
    entry = models.OneToOneField("ledger.JournalEntry", to_field="key", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="conversion",
                                 help_text="By key (conversion:<id>), set before the entry is posted.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "idempotency_key"], name="conversion_idempotency_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="conversion_amount_positive"),
            models.CheckConstraint(condition=~Q(from_asset=F("to_asset")), name="conversion_assets_differ"),
        ]

    def __str__(self) -> str:
        return f"conversion #{self.pk} {self.amount} {self.from_asset_id} -> {self.to_asset_id}"
