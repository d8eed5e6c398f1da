"""Placing an order: check its shape against the market's grid and the account, hold what it may spend, store it
as ``new`` and wake the matcher. Takes no market lock: it only inserts a ``new`` row and a hold."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from accounts.models import ClientAccount
from accounts.services import account_require_can_trade
from audit.services import audit_row, audit_values, user_or_none
from core.exceptions import Code as GenericCode
from core.validation import require_choice
from ledger import services as ledger
from ledger.errors import InsufficientFunds
from ledger.models import LedgerAccount
from ledger.money import is_exact
from ledger.selectors import balance_get
from trading import outbox, selectors, sql
from trading.errors import Code, InvalidOrder, MarketMisconfigured, MarketNotOpen, OrderConflict
from trading.fill_amounts import buy_hold, decimal_places
from trading.models import TRADING_STATUSES, Market, Order, OrderType, SelfTradePrevention, Side, TimeInForce
from trading.services import order_types, risk
from trading.wakeups import market_wake_on_commit

LEDGER_DECIMALS = 18
RATE_DECIMALS = 8
ORDER_AUDIT_FIELDS = [
    "market", "client_order_id", "side", "type", "time_in_force", "post_only", "stp", "price", "size", "funds",
    "status", "reason", "filled_size", "stop_price", "expire_time", "metadata",
]


@dataclass(frozen=True)
class OrderParams:
    market_id: int
    side: str
    type: str
    size: Decimal | None
    price: Decimal | None
    funds: Decimal | None
    time_in_force: str
    post_only: bool
    stp: str
    stop_price: Decimal | None = None
    expire_time: datetime | None = None
    metadata: dict = field(default_factory=dict)

    @classmethod
    def of(cls, order: Order) -> OrderParams:
        return cls(**{f.name: getattr(order, f.name) for f in fields(cls)})


def order_place(*, account: ClientAccount, market: Market, side: str, type: str, size: Decimal | None = None,
                price: Decimal | None = None, funds: Decimal | None = None, time_in_force: str = TimeInForce.GTC,
                post_only: bool = False, stp: str = SelfTradePrevention.CANCEL_NEWEST,
                client_order_id: str | None = None, stop_price: Decimal | None = None,
                expire_time: datetime | None = None, metadata: dict | None = None, replaces: Order | None = None,
                acting_user, savepoint: bool = True) -> Order:
    """Accept an order: validate it, hold what it may spend, store it as ``new`` and wake the matcher.

    Idempotent on (account, client_order_id): the same id with the same parameters returns the stored order,
    with other parameters it is a conflict. ``replaces``: the order an amend cancelled for this one.

    ``market`` may have been read long before (the API takes it from a per-process cache): the transaction reads
    the market's status and version fresh, and reloads the market if it changed.

    ``savepoint=False``: place it in the caller's transaction as it is, without a transaction or savepoint of its
    own. A refusal has written nothing (``sql.placement_write`` writes all or nothing), so the caller's transaction
    goes on; for a caller that holds the account's row lock from an earlier statement, so that no concurrent
    placement can take the client order id between this one's check and its insert (``batches``).
    """
    client_order_id = client_order_id or uuid.uuid4().hex
    if len(client_order_id) > 64:
        raise InvalidOrder("A client order id has at most 64 characters.", code=GenericCode.INVALID,
                           field="client_order_id")
    params = _params_normalised(OrderParams(market.pk, side, type, size, price, funds, time_in_force,
                                            bool(post_only), stp, stop_price, expire_time,
                                            metadata if metadata is not None else {}))
    if not savepoint:
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("order_place(savepoint=False) must run inside the caller's transaction")
        return _order_place(account, market, params, client_order_id, acting_user, replaces)
    try:
        with transaction.atomic():
            return _order_place(account, market, params, client_order_id, acting_user, replaces)
    except IntegrityError:
        # A concurrent request with the same client order id committed first (the unique index made us wait).
        existing = Order.objects.filter(account=account, client_order_id=client_order_id).first()
        if existing is None:
            raise
        return _replayed(existing, params)


def _order_place(account: ClientAccount, market: Market, params: OrderParams, client_order_id: str,
                 acting_user, replaces: Order | None = None) -> Order:
    intent = risk.OrderIntent(params.side, params.type, params.price, params.size, params.funds, params.post_only,
                              params.stop_price)
    known = sql.placement_reads(account, market, client_order_id, risk.reads_needed(market, intent))
    if known.market_version != _version(market):
        # The caller's market is stale (halted, reopened or edited since it was read, e.g. by a process's
        # market cache): read it again, and what depends on it.
        market = _market_reloaded(market.symbol)
        params = replace(params, market_id=market.pk)
        known = sql.placement_reads(account, market, client_order_id, risk.reads_needed(market, intent))
    if known.existing_order_id is not None:
        return _replayed(Order.objects.get(pk=known.existing_order_id), params)
    _market_check(market, params)
    _account_check(account)
    _limits_check(market, params, known.max_order_sizes)
    risk.order_risk_check(market=market, order=intent, kill_switch=known.kill_switch, reads=known.risk)
    maker_rate, taker_rate = _fee_rates(market, known.fee_schedules)
    order = Order(account=account, market=market, client_order_id=client_order_id, maker_fee_rate=maker_rate,
                  taker_fee_rate=taker_rate, created_by=user_or_none(acting_user), replaces=replaces,
                  **_params_fields(params))
    ledger_account = account.ledger_account  # authentication loads it with the account
    asset, amount = _hold_needed(order, market, ledger_account)
    # No replay check of the hold key: it is derived from the order's (account, client order id), which has just
    # been found unused (a concurrent twin fails on the unique index and is replayed).
    order_id, hold_id = known.new_ids or (None, None)
    order.pk = order_id
    order.hold = ledger.hold_new(key=f"order:{account.pk}:{client_order_id}", account=ledger_account, asset=asset,
                                 amount=amount, reason=f"order {order.side} {market.symbol}", pk=hold_id)

    def records(placed: Order):
        audit = audit_row(acting_user=acting_user, action="order.place", obj=placed, account=account,
                          after=audit_values(placed, ORDER_AUDIT_FIELDS))
        return audit, outbox.order_placed(placed, market)

    sql.placement_write(order, records=records, field="funds" if order.funds is not None else "size")
    market_wake_on_commit(market.pk)
    return order


def _version(market: Market) -> tuple:
    return market.pk, market.status, market.updated_at


def _market_reloaded(symbol: str) -> Market:
    market = selectors.market_reloaded(symbol)
    if market is None:  # deleted since the caller read it
        raise InvalidOrder(f"There is no market {symbol!r}.", code=GenericCode.DOES_NOT_EXIST, field="market")
    return market


def _params_fields(params: OrderParams) -> dict:
    return {f.name: getattr(params, f.name) for f in fields(params)}


def _replayed(existing: Order, params: OrderParams) -> Order:
    if OrderParams.of(existing) != params:
        raise OrderConflict(
            f"Client order id {existing.client_order_id!r} was already used for an order with other parameters.",
            field="client_order_id",
        )
    return existing


def _params_normalised(p: OrderParams) -> OrderParams:
    """Check the order's shape; market orders never rest, so their GTC means IOC."""
    require_choice(p.side, Side.values, field="side", error=InvalidOrder)
    require_choice(p.type, OrderType.values, field="type", error=InvalidOrder)
    require_choice(p.time_in_force, TimeInForce.values, field="time_in_force", error=InvalidOrder)
    require_choice(p.stp, SelfTradePrevention.values, field="stp", error=InvalidOrder)
    for name in ("size", "price", "funds", "stop_price"):
        value = getattr(p, name)
        if value is not None and (not isinstance(value, Decimal) or not value.is_finite() or value <= 0):
            raise InvalidOrder(f"{name} must be a positive decimal.", code=Code.NOT_POSITIVE, field=name)
    order_types.shape_check(p)  # stops, good-til-time, metadata
    if p.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        _limit_shape_check(p)
        return p
    _market_shape_check(p)
    tif = TimeInForce.IOC if p.time_in_force == TimeInForce.GTC else p.time_in_force
    return OrderParams(**{**_params_fields(p), "time_in_force": tif})


def _limit_shape_check(p: OrderParams) -> None:
    if p.price is None:
        raise InvalidOrder("A limit order needs a price.", code=Code.PRICE_REQUIRED, field="price")
    if p.size is None:
        raise InvalidOrder("A limit order needs a size.", code=Code.SIZE_REQUIRED, field="size")
    if p.funds is not None:
        raise InvalidOrder("Only market buys may give funds.", code=Code.FUNDS_NOT_ALLOWED, field="funds")
    if p.post_only and p.time_in_force != TimeInForce.GTC:
        raise InvalidOrder("Post-only orders must be good-till-cancelled.", code=Code.POST_ONLY_REQUIRES_GTC,
                           field="post_only")


def _market_shape_check(p: OrderParams) -> None:
    if p.price is not None:
        raise InvalidOrder("A market order takes no price.", code=Code.PRICE_NOT_ALLOWED, field="price")
    if p.post_only:
        raise InvalidOrder("A market order cannot be post-only.", code=Code.POST_ONLY_REQUIRES_LIMIT,
                           field="post_only")
    if (p.size is None) == (p.funds is None):
        raise InvalidOrder("A market order needs exactly one of size and funds.", code=Code.SIZE_OR_FUNDS,
                           field="size")
    if p.funds is not None and p.side != Side.BUY:
        raise InvalidOrder("Only market buys may give funds.", code=Code.FUNDS_NOT_ALLOWED, field="funds")
    if p.funds is not None and p.time_in_force == TimeInForce.FOK:
        raise InvalidOrder("A market buy by funds cannot be fill-or-kill.", code=Code.FOK_REQUIRES_SIZE,
                           field="time_in_force")


def _market_check(market: Market, p: OrderParams) -> None:
    if market.status not in TRADING_STATUSES:
        raise MarketNotOpen(f"{market.symbol} is {market.get_status_display().lower()}: no new orders.",
                            field="market")
    if decimal_places(market.tick_size) + decimal_places(market.lot_size) + RATE_DECIMALS > LEDGER_DECIMALS:
        raise MarketMisconfigured(f"{market.symbol}: tick and lot are too fine for exact fee accounting.")
    for name in ("price", "stop_price"):
        value = getattr(p, name)
        if value is not None and value % market.tick_size != 0:
            raise InvalidOrder(f"The {name.replace('_', ' ')} must be a multiple of the tick size "
                               f"{market.tick_size.normalize()}.", code=Code.INVALID_TICK, field=name)
    order_types.expire_time_check(p.expire_time)
    if p.size is not None:
        _size_check(market, p.size)
    if p.funds is not None and not is_exact(p.funds, market.quote.precision):
        raise InvalidOrder(f"{market.quote_id} amounts have at most {market.quote.precision} decimal places.",
                           code=Code.TOO_PRECISE, field="funds")


def _size_check(market: Market, size: Decimal) -> None:
    if not is_exact(size, market.base.precision):
        raise InvalidOrder(f"{market.base_id} amounts have at most {market.base.precision} decimal places.",
                           code=Code.TOO_PRECISE, field="size")
    if size % market.lot_size != 0:
        raise InvalidOrder(f"The size must be a multiple of the lot size {market.lot_size.normalize()}.",
                           code=Code.INVALID_LOT, field="size")
    if size < market.min_size:
        raise InvalidOrder(f"The size is below the minimum {market.min_size.normalize()}.",
                           code=Code.SIZE_BELOW_MINIMUM, field="size")
    if size > market.max_size:
        raise InvalidOrder(f"The size is above the maximum {market.max_size.normalize()}.",
                           code=Code.SIZE_ABOVE_MAXIMUM, field="size")


def _account_check(account: ClientAccount) -> None:
    account_require_can_trade(account=account)


def _limits_check(market: Market, p: OrderParams, max_order_sizes: dict[str, Decimal]) -> None:
    """Per-asset maximum order sizes: the base asset caps the size, the quote asset the notional or funds."""
    committed = {market.base_id: p.size, market.quote_id: p.funds or (p.price * p.size if p.price else None)}
    for asset, amount in committed.items():
        limit = max_order_sizes.get(asset)
        if limit is not None and amount is not None and amount > limit:
            field = "size" if asset == market.base_id else ("funds" if p.funds else "price")
            raise InvalidOrder(f"The order exceeds this account's maximum {asset} order size of {limit.normalize()}.",
                               code=Code.ORDER_SIZE_LIMIT_EXCEEDED, field=field)


def _fee_rates(market: Market, schedules: dict[int | None, tuple[Decimal, Decimal]]) -> tuple[Decimal, Decimal]:
    """(maker, taker) rates: the account tier's schedule for this market, else for all markets, else the market's."""
    return schedules.get(market.pk) or schedules.get(None) or (market.maker_fee_rate, market.taker_fee_rate)


def _hold_needed(order: Order, market: Market, ledger_account: LedgerAccount) -> tuple[str, Decimal]:
    """What the order may spend. A market buy by size cannot know its price: it holds all available quote
    for the moment it is matched, and gets back what it did not spend."""
    if order.side == Side.SELL:
        return market.base_id, order.size
    if order.funds is not None:
        return market.quote_id, order.funds
    if order.type == OrderType.MARKET:
        available = balance_get(account=ledger_account, asset=market.quote_id).available
        if available <= 0:
            raise InsufficientFunds(f"No {market.quote_id} available for a market buy.", field="size")
        return market.quote_id, available
    rate = order.maker_fee_rate if order.post_only else max(order.maker_fee_rate, order.taker_fee_rate)
    return market.quote_id, buy_hold(price=order.price, size=order.size, fee_rate=rate,
                                     quote_precision=market.quote.precision)
