"""Held-rate quotes against the firm's inventory, and the desk's controls (README "Quotes").

A quote is a promise with an expiry: ``quote_create`` prices a size for a client (``trading.pricing``: VWAP of
the firm's own book to the size, the tier's spread, the inventory skew), checks the firm's exposure limits and
stores the price until ``expires_at`` (``QUOTE_TTL_SECONDS``). It reserves nothing. ``quote_execute`` settles it
once, at exactly that price, in ONE balanced entry between the client and ``firm:inventory`` (the fee to
``firm:fees``), or refuses: ``quote_expired``, ``insufficient_funds``, ``quote_rejected`` (the market is not open,
its reference moved against the firm beyond the market's tolerance or cannot be priced, or an exposure limit),
``quote_already_executed`` (executed under another key). Executing again with the same key returns the executed
quote and writes nothing. The quote row is locked first, so concurrent executions settle once.

The desk's controls, each audited: spreads per client tier and market under maker-checker
(``spread_change_propose`` / ``_approve`` / ``_reject``, never decided by the proposer), the market pricing
(fallback price, skew, tolerance: ``market_pricing_set``) and the firm's funding of its inventory
(``inventory_fund``). Time comes from ``trading.clock.now`` (or ``at=``), so expiry is testable to the microsecond.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import ClientAccount, Tier
from accounts.services import account_require_can_trade
from audit.services import audit_record, audit_values, user_or_none
from core.exceptions import Code as CoreCode
from core.exceptions import Conflict, Forbidden, NotFound
from core.validation import require_choice
from ledger import selectors as ledger_selectors
from ledger import services as ledger
from ledger.errors import Code as LedgerCode
from ledger.errors import IdempotencyConflict, InsufficientFunds, InvalidAmount
from ledger.models import Asset, LedgerAccount, Purpose
from ledger.money import is_exact
from ledger.reference import FIRM_ACCOUNTS
from trading import clock, pricing, selectors
from trading.errors import (
    Code,
    ExposureLimitExceeded,
    InvalidOrder,
    MarketNotOpen,
    PriceUnavailable,
    QuoteAlreadyExecuted,
    QuoteCode,
    QuoteExpired,
    QuoteRejected,
    TradingError,
)
from trading.inventory import (
    INVENTORY_CODE,
    decimal_of,
    exposure_guarded,
    exposure_refusal,
    exposure_require,
    exposures_read,
    inventory_account,
)
from trading.models import (
    ChangeStatus,
    InventoryFunding,
    Market,
    MarketPricing,
    MarketStatus,
    Quote,
    QuoteSpread,
    QuoteStatus,
    Side,
    SpreadChange,
)
from trading.services.controls import kill_switch_require_off

ZERO = Decimal(0)
MAX_BPS = Decimal(10_000)
QUOTE_AUDIT_FIELDS = ["market", "side", "size", "funds", "price", "reference_price", "reference_source",
                      "spread_bps", "skew_bps", "fee_rate", "quote_amount", "fee", "total", "status",
                      "expires_at", "executed_at", "entry"]


# --- pricing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Priced:
    """A price for one size, with everything it was derived from (stored on the quote as is)."""

    market: Market
    side: str
    size: Decimal
    reference: pricing.Reference
    spread_bps: Decimal
    skew_bps: Decimal
    price: Decimal
    fee_rate: Decimal
    amounts: pricing.QuoteAmounts

    @property
    def spread_captured(self) -> Decimal:
        return pricing.spread_captured(reference=self.reference, side=self.side,
                                       quote_amount=self.amounts.quote_amount)

    def inventory_deltas(self) -> dict[str, Decimal]:
        return inventory_deltas(self.market, self.side, self.size, self.amounts.quote_amount)


def inventory_deltas(market: Market, side: str, size: Decimal, quote_amount: Decimal) -> dict[str, Decimal]:
    """How a quote moves the firm's inventory: the base the other way round from the client, and the quote
    amount likewise (not the fee, which is revenue)."""
    sign = -1 if side == Side.BUY else 1
    return {market.base_id: sign * size, market.quote_id: -sign * quote_amount}


@dataclass(frozen=True)
class _Desk:
    """What pricing one market for one client needs, read once per request."""

    market: Market
    levels: dict[str, list[pricing.Level]]  # client side -> the book side it walks, best first
    fallback: Decimal | None
    skew_bps: Decimal
    spread_bps: Decimal
    fee_rate: Decimal
    held: dict[str, Decimal]  # inventory positions of the market's assets
    limits: dict

    def skew_for(self) -> Decimal:
        limit = self.limits.get(self.market.base_id)
        if limit is None:
            return ZERO
        return pricing.inventory_skew_bps(position=self.held[self.market.base_id], max_long=limit.max_long,
                                          max_short=limit.max_short, skew_bps=self.skew_bps)

    def price(self, side: str, size: Decimal) -> Priced | None:
        reference = pricing.reference_price(self.levels[side], size, side=side, fallback=self.fallback)
        if reference is None:
            return None
        skew = self.skew_for()
        price = pricing.quote_price(reference=reference, side=side, spread_bps=self.spread_bps,
                                    skew_bps=skew, tick=self.market.tick_size)
        if price <= 0:
            return None
        amounts = pricing.quote_amounts(price=price, size=size, side=side, fee_rate=self.fee_rate,
                                        quote_precision=self.market.quote.precision)
        return Priced(self.market, side, size, reference, self.spread_bps, skew, price, self.fee_rate, amounts)


def _book_side(side: str) -> str:
    """A client buy takes the asks, a client sell the bids."""
    return Side.SELL if side == Side.BUY else Side.BUY


# The open size per price level of the side of the book a quote walks, best first (``selectors.book_levels``
# without the order count, as one plain statement: it runs on every quote and every execution).
LEVELS_SQL = """
SELECT price, SUM(size - filled_size) FROM trading_order
 WHERE market_id = %s AND side = %s AND status IN ('open', 'partially_filled')
 GROUP BY price ORDER BY price {direction} LIMIT %s
"""


def _levels(market: Market, side: str) -> list[pricing.Level]:
    book_side = _book_side(side)
    with connection.cursor() as cursor:
        cursor.execute(LEVELS_SQL.format(direction="DESC" if book_side == Side.BUY else "ASC"),
                       [market.pk, book_side, settings.QUOTE_BOOK_DEPTH])
        return [pricing.Level(decimal_of(price), decimal_of(size)) for price, size in cursor.fetchall()]


def _market_pricing(market: Market) -> MarketPricing:
    """The market's pricing controls (read with the market: ``select_related("pricing")``), or the defaults."""
    try:
        return market.pricing
    except MarketPricing.DoesNotExist:
        return _market_pricing_default(market)


def _market_pricing_default(market: Market) -> MarketPricing:
    return MarketPricing(market=market, tolerance_bps=settings.QUOTE_EXECUTION_TOLERANCE_BPS)


def _usable_fallback(row: MarketPricing, at: datetime) -> Decimal | None:
    """The fallback price unless it is older than ``QUOTE_FALLBACK_MAX_AGE_SECONDS`` (0: no age limit)."""
    if row.fallback_price is None:
        return None
    max_age = settings.QUOTE_FALLBACK_MAX_AGE_SECONDS
    if max_age and (row.fallback_set_at is None or at - row.fallback_set_at > timedelta(seconds=max_age)):
        return None
    return row.fallback_price


def spread_for(*, tier: str, market: Market) -> Decimal:
    """The tier's spread on this market, else on all markets, else ``QUOTE_DEFAULT_SPREAD_BPS``."""
    return _tier_terms(tier, market)[0]


# The tier's spreads and fee schedules for a market (its own and the all-markets ones), in one plain statement.
TIER_TERMS_SQL = """
SELECT 'spread', market_id, spread_bps FROM trading_quotespread
 WHERE tier = %s AND (market_id = %s OR market_id IS NULL)
UNION ALL
SELECT 'fee', market_id, taker_fee_rate FROM trading_feeschedule
 WHERE tier = %s AND (market_id = %s OR market_id IS NULL)
"""


def _tier_terms(tier: str, market: Market) -> tuple[Decimal, Decimal]:
    """(spread in bps, fee rate) for a client of ``tier`` on ``market``. The spread: the tier's on the market, else
    on all markets, else ``QUOTE_DEFAULT_SPREAD_BPS``. The fee: the taker rate the tier pays there (its schedule
    for the market, else for all markets, else the market's), as an order that takes liquidity."""
    with connection.cursor() as cursor:
        cursor.execute(TIER_TERMS_SQL, [tier, market.pk, tier, market.pk])
        rows = cursor.fetchall()
    found = {(kind, market_id): decimal_of(value) for kind, market_id, value in rows}
    spread = found.get(("spread", market.pk), found.get(("spread", None), settings.QUOTE_DEFAULT_SPREAD_BPS))
    fee = found.get(("fee", market.pk), found.get(("fee", None), market.taker_fee_rate))
    return spread, fee


def _desk(account: ClientAccount, market: Market, sides, at: datetime) -> _Desk:
    row = _market_pricing(market)
    held, limits = exposures_read([market.base_id, market.quote_id])
    spread, fee_rate = _tier_terms(account.tier, market)
    return _Desk(
        market=market, levels={side: _levels(market, side) for side in sides}, fallback=_usable_fallback(row, at),
        skew_bps=row.skew_bps, spread_bps=spread, fee_rate=fee_rate, held=held, limits=limits,
    )


@dataclass(frozen=True)
class Indicative:
    market: Market
    size: Decimal
    bid: Decimal | None  # what a client selling ``size`` would get per unit
    ask: Decimal | None  # what a client buying ``size`` would pay per unit
    at: datetime


def indicative_prices(*, account: ClientAccount, at: datetime | None = None) -> list[Indicative]:
    """For every market, the prices this client would be quoted now for the market's minimum size: no promise
    (a quote is), and no exposure check. A side without a price (thin book, no fallback) is None."""
    at = at or clock.now()
    result = []
    for market in Market.objects.select_related("base", "quote", "pricing").order_by("symbol"):
        desk = _desk(account, market, (Side.BUY, Side.SELL), at)
        bid, ask = desk.price(Side.SELL, market.min_size), desk.price(Side.BUY, market.min_size)
        result.append(Indicative(market, market.min_size, bid.price if bid else None, ask.price if ask else None,
                                 at))
    return result


# --- quotes -------------------------------------------------------------------------------------------------


def _request_check(market: Market, side: str, size: Decimal | None, funds: Decimal | None) -> None:
    require_choice(side, Side.values, field="side", error=InvalidOrder)
    if (size is None) == (funds is None):
        raise InvalidOrder("A quote needs exactly one of size and funds.", code=QuoteCode.SIZE_OR_FUNDS, field="size")
    for name, value in (("size", size), ("funds", funds)):
        if value is not None and (not isinstance(value, Decimal) or not value.is_finite() or value <= 0):
            raise InvalidOrder(f"{name} must be a positive decimal.", code=Code.NOT_POSITIVE, field=name)
    if size is not None:
        if not is_exact(size, market.base.precision):
            raise InvalidOrder(f"{market.base_id} amounts have at most {market.base.precision} decimal places.",
                               code=Code.TOO_PRECISE, field="size")
        if size % market.lot_size != 0:
            raise InvalidOrder(f"The size must be a multiple of the lot size {market.lot_size.normalize()}.",
                               code=Code.INVALID_LOT, field="size")
        _size_range_check(market, size, field="size")
    if funds is not None and not is_exact(funds, market.quote.precision):
        raise InvalidOrder(f"{market.quote_id} amounts have at most {market.quote.precision} decimal places.",
                           code=Code.TOO_PRECISE, field="funds")


def _size_range_check(market: Market, size: Decimal, *, field: str) -> None:
    if size < market.min_size:
        raise InvalidOrder(f"The size is below the minimum {market.min_size.normalize()}.",
                           code=QuoteCode.SIZE_BELOW_MINIMUM, field=field)
    if size > market.max_size:
        raise InvalidOrder(f"The size is above the maximum {market.max_size.normalize()}.",
                           code=QuoteCode.SIZE_ABOVE_MAXIMUM, field=field)


def _priced_for_funds(desk: _Desk, side: str, funds: Decimal) -> Priced:
    """The largest size (on the lot grid) whose total stays within ``funds``, priced."""
    market = desk.market

    def total_for(size: Decimal) -> Decimal | None:
        priced = desk.price(side, size)
        return priced.amounts.total if priced is not None and priced.amounts.total > 0 else None

    if desk.price(side, market.min_size) is None:
        raise PriceUnavailable(f"No price for {market.symbol}: the book is too thin and there is no fallback.")
    size = pricing.size_for_funds(funds=funds, lot=market.lot_size, max_size=market.max_size, total_for=total_for)
    if size < market.min_size:
        raise InvalidOrder(f"{funds.normalize():f} {market.quote_id} does not buy or sell the minimum size "
                           f"{market.min_size.normalize()} {market.base_id}.", code=QuoteCode.SIZE_BELOW_MINIMUM,
                           field="funds")
    return desk.price(side, size)


def _market_now(symbol: str) -> Market:
    """The market and its pricing controls as they are now (the caller's copy may come from a process cache:
    its status, even its id, may differ)."""
    market = Market.objects.select_related("base", "quote", "pricing").filter(symbol=symbol).first()
    if market is None:
        raise InvalidOrder(f"There is no market {symbol!r}.", code=CoreCode.DOES_NOT_EXIST, field="market")
    return market


@transaction.atomic
def quote_create(*, account: ClientAccount, market: Market, side: str, size: Decimal | None = None,
                 funds: Decimal | None = None, acting_user, at: datetime | None = None) -> Quote:
    """Price ``size`` (base) or ``funds`` (the quote-asset total to pay or receive at most) for the client and
    hold that price until ``expires_at``. Refused: market not open, no price (``price_unavailable``), or a
    trade the firm's exposure limits would not take (``exposure_limit_exceeded``)."""
    at = at or clock.now()
    market = _market_now(market.symbol)
    _request_check(market, side, size, funds)
    if market.status != MarketStatus.OPEN:
        raise MarketNotOpen(f"{market.symbol} is {market.get_status_display().lower()}: no quotes.", field="market")
    account_require_can_trade(account=account)
    kill_switch_require_off(account=account)
    desk = _desk(account, market, (side,), at)
    priced = _priced_for_funds(desk, side, funds) if funds is not None else desk.price(side, size)
    if priced is None:
        raise PriceUnavailable(f"No price for {size.normalize():f} {market.base_id}: the book is too thin and "
                               f"there is no fallback price.", field="size")
    if priced.amounts.total <= 0:
        raise InvalidOrder("The size is too small to cover the fee.", code=QuoteCode.SIZE_BELOW_MINIMUM, field="size")
    reason = exposure_refusal(priced.inventory_deltas(), held=desk.held, limits=desk.limits)
    if reason is not None:
        raise ExposureLimitExceeded(f"The firm cannot quote this: {reason}.")
    quote = Quote.objects.create(
        account=account, market=market, side=side, size=priced.size, funds=funds, price=priced.price,
        reference_price=priced.reference.price, reference_source=priced.reference.source,
        spread_bps=priced.spread_bps, skew_bps=priced.skew_bps, fee_rate=priced.fee_rate,
        quote_amount=priced.amounts.quote_amount, fee=priced.amounts.fee, total=priced.amounts.total,
        spread_captured=priced.spread_captured, created_at=at,
        expires_at=at + timedelta(seconds=float(settings.QUOTE_TTL_SECONDS)), created_by=user_or_none(acting_user),
    )
    audit_record(acting_user=acting_user, action="quote.create", obj=quote, account=account,
                 after=audit_values(quote, QUOTE_AUDIT_FIELDS))
    # Event log (when it lands): "quote.created" here, in this transaction.
    return quote


@transaction.atomic
def quote_execute(*, quote: Quote | int, idempotency_key: str, acting_user, account: ClientAccount | None = None,
                  at: datetime | None = None) -> Quote:
    """Settle the quote (or the quote with this id) at its price, once. With ``account``, only a quote of that
    account is found (else ``not_found``). The same key again returns the executed quote; another key is
    ``quote_already_executed``. Every refusal writes nothing."""
    if not idempotency_key:
        raise TradingError("Executing a quote needs an idempotency key.", code=QuoteCode.IDEMPOTENCY_KEY_REQUIRED,
                           field="idempotency_key")
    at = at or clock.now()
    quote = _locked_quote(quote, account)
    if quote.status == QuoteStatus.EXECUTED:
        if quote.execution_key == idempotency_key:
            return quote
        raise QuoteAlreadyExecuted(f"Quote {quote.pk} was already executed.")
    if at >= quote.expires_at:
        raise QuoteExpired(f"Quote {quote.pk} expired at {quote.expires_at.isoformat()}.")
    account, market = quote.account, quote.market
    account_require_can_trade(account=account)
    kill_switch_require_off(account=account)
    _still_honoured(quote, at)
    exposure_require(inventory_deltas(market, quote.side, quote.size, quote.quote_amount), error=QuoteRejected)
    legs = _legs(quote, account.ledger_account)
    # The quote row and the audit row first, the entry last: the ledger locks the balances (the firm's inventory
    # rows are the contended ones) as its last step, so they stay locked only until this transaction commits.
    before = {"status": quote.status}
    quote.status, quote.executed_at, quote.execution_key = QuoteStatus.EXECUTED, at, idempotency_key
    quote.entry_id = f"quote:{quote.pk}"
    quote.save(update_fields=["status", "executed_at", "execution_key", "entry"])
    audit_record(acting_user=acting_user, action="quote.execute", obj=quote, account=account, before=before,
                 after=audit_values(quote, ["status", "executed_at", "entry", "price", "size", "total"]))
    # Event log (when it lands): "quote.executed" here, in this transaction, with the entry key.
    try:
        with exposure_guarded(QuoteRejected):
            ledger.entry_post(key=quote.entry_id, kind="quote", legs=legs, acting_user=user_or_none(acting_user),
                              memo=f"Quote #{quote.pk}: {quote.side} {quote.size.normalize():f} {market.symbol} "
                                   f"@ {quote.price.normalize():f}")
    except InsufficientFunds as exc:
        asset, needed = (market.quote_id, quote.total) if quote.side == Side.BUY else (market.base_id, quote.size)
        raise InsufficientFunds(f"Insufficient {asset} to execute quote {quote.pk}: it needs "
                                f"{needed.normalize():f} {asset} available.") from exc
    return quote


def _locked_quote(quote: Quote | int, account: ClientAccount | None) -> Quote:
    """The quote under its row lock, with its market (status and pricing as they are now) and its account (the
    caller's, as authentication loaded it, or read now)."""
    rows = Quote.objects.select_for_update(no_key=True).filter(pk=quote.pk if isinstance(quote, Quote) else quote)
    if account is not None:
        rows = rows.filter(account=account)
    found = rows.first()
    if found is None:
        raise NotFound("No such quote.")
    found.market = _market_state(found.market_id)
    if account is None or not hasattr(account, "ledger_account"):
        account = ClientAccount.objects.select_related("ledger_account").get(pk=found.account_id)
    found.account = account
    return found


MARKET_STATE_SQL = """
SELECT m.symbol, m.status, p.id, p.fallback_price, p.fallback_set_at, p.skew_bps, p.tolerance_bps
  FROM trading_market m LEFT JOIN trading_marketpricing p ON p.market_id = m.id WHERE m.id = %s
"""


def _market_state(market_id: int) -> Market:
    """The market with its status and pricing controls read now, in one plain statement; what never changes once
    a market exists (symbol, assets, grid) from the process's market cache (``selectors.market_by_symbol``)."""
    with connection.cursor() as cursor:
        cursor.execute(MARKET_STATE_SQL, [market_id])
        symbol, status, pricing_id, fallback, fallback_set_at, skew, tolerance = cursor.fetchone()
    cached = selectors.market_by_symbol(symbol)
    if cached is None or cached.pk != market_id:  # a market recreated under the same symbol: read it again
        cached = selectors.market_reloaded(symbol)
    market = copy.copy(cached)
    market.status = status
    row = _market_pricing_default(market)
    if pricing_id is not None:
        if fallback_set_at is not None and timezone.is_naive(fallback_set_at):  # SQLite's raw datetimes
            fallback_set_at = fallback_set_at.replace(tzinfo=UTC)
        row = MarketPricing(id=pricing_id, market=market, fallback_price=None if fallback is None else
                            decimal_of(fallback), fallback_set_at=fallback_set_at, skew_bps=decimal_of(skew),
                            tolerance_bps=decimal_of(tolerance))
    Market.pricing.related.set_cached_value(market, row)
    return market


def _still_honoured(quote: Quote, at: datetime) -> None:
    """The market is open and its reference has not moved against the firm beyond the tolerance."""
    market = quote.market
    if market.status != MarketStatus.OPEN:
        raise QuoteRejected(f"Quote {quote.pk} is rejected: {market.symbol} is {market.status}.")
    row = _market_pricing(market)
    current = pricing.reference_price(_levels(market, quote.side), quote.size, side=quote.side,
                                      fallback=_usable_fallback(row, at))
    if current is None:
        raise QuoteRejected(f"Quote {quote.pk} is rejected: {market.symbol} can no longer be priced for its size.")
    if pricing.moved_against_firm(quoted=quote.reference_price, current=current.price, side=quote.side,
                                  tolerance_bps=row.tolerance_bps):
        raise QuoteRejected(f"Quote {quote.pk} is rejected: the market moved from {quote.reference_price.normalize():f}"
                            f" to {current.price.normalize():f}, beyond the {row.tolerance_bps.normalize():f} bps "
                            f"tolerance.")


def _firm_accounts() -> tuple[LedgerAccount, LedgerAccount]:
    """The inventory and fee revenue accounts, in one query."""
    fees_code = FIRM_ACCOUNTS[Purpose.FEES][0]
    found = {a.code: a for a in LedgerAccount.objects.filter(code__in=[INVENTORY_CODE, fees_code])}
    return (found.get(INVENTORY_CODE) or inventory_account(),
            found.get(fees_code) or ledger.firm_account(Purpose.FEES))


def _legs(quote: Quote, client: LedgerAccount) -> list:
    market, (inventory, fees) = quote.market, _firm_accounts()
    base, quote_asset = market.base_id, market.quote_id
    if quote.side == Side.BUY:
        legs = [ledger.debit(client, quote_asset, quote.total),
                ledger.credit(inventory, quote_asset, quote.quote_amount),
                ledger.credit(client, base, quote.size), ledger.debit(inventory, base, quote.size)]
    else:
        legs = [ledger.debit(client, base, quote.size), ledger.credit(inventory, base, quote.size),
                ledger.debit(inventory, quote_asset, quote.quote_amount),
                ledger.credit(client, quote_asset, quote.total)]
    if quote.fee:
        legs.append(ledger.credit(fees, quote_asset, quote.fee))
    return legs


# --- the desk's controls ------------------------------------------------------------------------------------


def _require_perm(acting_user, perm: str, doing: str) -> None:
    if acting_user is None or not acting_user.has_perm(perm):
        raise Forbidden(f"You do not have permission to {doing}.", code=CoreCode.PERMISSION_DENIED)


def _bps(value, *, field: str, upper: Decimal = MAX_BPS) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or not ZERO <= value < upper:
        raise InvalidAmount(f"{field} must be a number of basis points from 0 to below {upper}.", code=CoreCode.INVALID,
                            field=field)
    if value != value.quantize(Decimal("0.0001")):
        raise InvalidAmount("Basis points have at most 4 decimal places.", code=Code.TOO_PRECISE, field=field)
    return value


def _reason(reason: str, *, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise TradingError("Say why.", code=QuoteCode.REASON_REQUIRED, field=field)
    return reason[:500]


SPREAD_CHANGE_AUDIT_FIELDS = ["tier", "market", "spread_bps", "previous_bps", "reason", "status", "decided_by",
                              "decision_reason"]


@transaction.atomic
def spread_change_propose(*, tier: str, market: Market | None, spread_bps: Decimal, reason: str,
                          acting_user) -> SpreadChange:
    """Propose the spread of a client tier on one market (or, market None, on all markets). Nothing changes until
    another user with ``trading.approve_spreadchange`` approves it."""
    _require_perm(acting_user, "trading.add_spreadchange", "propose spread changes")
    require_choice(tier, Tier, field="tier", error=TradingError)
    change = SpreadChange.objects.create(tier=tier, market=market, spread_bps=_bps(spread_bps, field="spread_bps"),
                                         reason=_reason(reason), proposed_by=acting_user)
    audit_record(acting_user=acting_user, action="spread_change.propose", obj=change,
                 after=audit_values(change, SPREAD_CHANGE_AUDIT_FIELDS))
    return change


def _decidable(change: SpreadChange, acting_user, doing: str) -> SpreadChange:
    _require_perm(acting_user, "trading.approve_spreadchange", doing)
    change = SpreadChange.objects.select_for_update(no_key=True).get(pk=change.pk)
    if change.proposed_by_id == acting_user.pk:
        raise Forbidden("Four-eyes rule: the proposer of a spread change cannot decide it.", code=QuoteCode.FOUR_EYES)
    return change


@transaction.atomic
def spread_change_approve(*, change: SpreadChange, acting_user) -> SpreadChange:
    """Apply someone else's proposal: the tier's spread on the market is set to it from the next quote on.
    Approving again changes nothing."""
    change = _decidable(change, acting_user, "approve spread changes")
    if change.status == ChangeStatus.APPROVED:
        return change
    if change.status != ChangeStatus.PROPOSED:
        raise Conflict(f"Spread change #{change.pk} was already {change.status}.", code=QuoteCode.ALREADY_DECIDED)
    live = QuoteSpread.objects.select_for_update(no_key=True).filter(tier=change.tier, market=change.market).first()
    change.previous_bps = live.spread_bps if live else None
    if live is None:
        live = QuoteSpread(tier=change.tier, market=change.market)
    live.spread_bps, live.change = change.spread_bps, change
    live.save()
    change.status, change.decided_by, change.decided_at = ChangeStatus.APPROVED, acting_user, clock.now()
    change.save(update_fields=["previous_bps", "status", "decided_by", "decided_at"])
    audit_record(acting_user=acting_user, action="spread_change.approve", obj=change,
                 before={"spread_bps": change.previous_bps}, after=audit_values(change, SPREAD_CHANGE_AUDIT_FIELDS))
    return change


@transaction.atomic
def spread_change_reject(*, change: SpreadChange, acting_user, reason: str) -> SpreadChange:
    """Turn a proposal down; nothing changes. Rejecting again changes nothing."""
    change = _decidable(change, acting_user, "reject spread changes")
    if change.status == ChangeStatus.REJECTED:
        return change
    if change.status != ChangeStatus.PROPOSED:
        raise Conflict(f"Spread change #{change.pk} was already {change.status}.", code=QuoteCode.ALREADY_DECIDED)
    change.status, change.decided_by, change.decided_at = ChangeStatus.REJECTED, acting_user, clock.now()
    change.decision_reason = _reason(reason)
    change.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
    audit_record(acting_user=acting_user, action="spread_change.reject", obj=change,
                 before={"status": ChangeStatus.PROPOSED}, after=audit_values(change, SPREAD_CHANGE_AUDIT_FIELDS))
    return change


UNCHANGED = object()
PRICING_AUDIT_FIELDS = ["fallback_price", "fallback_set_at", "skew_bps", "tolerance_bps"]


@transaction.atomic
def market_pricing_set(*, market: Market, acting_user, fallback_price=UNCHANGED, skew_bps: Decimal | None = None,
                       tolerance_bps: Decimal | None = None) -> MarketPricing:
    """Set a market's fallback reference price (None clears it), inventory skew and execution tolerance;
    arguments left out keep their value. Setting the fallback stamps it with the time (its age is checked)."""
    _require_perm(acting_user, "trading.change_marketpricing", "change market pricing")
    row = MarketPricing.objects.select_for_update(no_key=True).filter(market=market).first()
    created = row is None
    if created:
        row = MarketPricing(market=market, tolerance_bps=settings.QUOTE_EXECUTION_TOLERANCE_BPS)
    before = None if created else audit_values(row, PRICING_AUDIT_FIELDS)
    if fallback_price is not UNCHANGED:
        if fallback_price is not None:
            if not isinstance(fallback_price, Decimal) or not fallback_price.is_finite() or fallback_price <= 0:
                raise InvalidAmount("A fallback price must be a positive decimal.", code=Code.NOT_POSITIVE,
                                    field="fallback_price")
            if fallback_price % market.tick_size != 0:
                raise InvalidAmount(f"The fallback price must be a multiple of the tick size "
                                    f"{market.tick_size.normalize()}.", code=Code.INVALID_TICK, field="fallback_price")
        row.fallback_price, row.fallback_set_at = fallback_price, clock.now() if fallback_price is not None else None
    if skew_bps is not None:
        row.skew_bps = _bps(skew_bps, field="skew_bps")
    if tolerance_bps is not None:
        row.tolerance_bps = _bps(tolerance_bps, field="tolerance_bps")
    row.save()
    audit_record(acting_user=acting_user, action="market_pricing.set", obj=row, before=before,
                 after={"market": market.symbol, **audit_values(row, PRICING_AUDIT_FIELDS)})
    return row


@transaction.atomic
def inventory_fund(*, asset: str | Asset, amount: Decimal, reference: str, reason: str, acting_user
                   ) -> InventoryFunding:
    """Record the firm's own assets arriving in custody for its inventory (positive: debit custody, credit
    ``firm:inventory``) or leaving it (negative: the reverse), in one entry ``inventory-funding:<reference>``.
    The same reference and content again returns the first; other content under it is a conflict. The
    position must stay within the asset's exposure limits."""
    _require_perm(acting_user, "trading.add_inventoryfunding", "fund the inventory")
    code = asset.code if isinstance(asset, Asset) else asset
    precision = ledger_selectors.asset_precisions([code]).get(code)
    if precision is None:
        raise TradingError(f"Unknown asset {code!r}.", code=LedgerCode.UNKNOWN_ASSET, field="asset")
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount == 0:
        raise InvalidAmount("The amount must be a non-zero decimal.", field="amount")
    if not is_exact(amount, precision):
        raise InvalidAmount(f"{code} amounts have at most {precision} decimal places.", code=Code.TOO_PRECISE,
                            field="amount")
    reference = (reference or "").strip()
    if not reference or len(reference) > 128:
        raise TradingError("A transfer reference of 1 to 128 characters is required.",
                           code=QuoteCode.REFERENCE_REQUIRED, field="reference")
    existing = InventoryFunding.objects.filter(reference=reference).first()
    if existing is not None:
        if (existing.asset_id, existing.amount) != (code, amount):
            raise IdempotencyConflict(f"Reference {reference!r} was already used for another funding.",
                                      field="reference")
        return existing
    reason = _reason(reason)
    exposure_require({code: amount})
    custody, inventory = ledger.firm_account(Purpose.CUSTODY), inventory_account()
    with exposure_guarded():
        entry = ledger.entry_post(key=f"inventory-funding:{reference}", kind="inventory_funding",
                                  legs=[ledger.debit(custody, code, amount), ledger.credit(inventory, code, amount)],
                                  memo=f"Inventory funding {reference}: {reason}"[:500], acting_user=acting_user)
    funding = InventoryFunding.objects.create(asset_id=code, amount=amount, reference=reference, reason=reason,
                                              entry=entry, created_by=acting_user)
    audit_record(acting_user=acting_user, action="inventory.fund", obj=funding,
                 after=audit_values(funding, ["asset", "amount", "reference", "reason", "entry"]))
    return funding
