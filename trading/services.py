"""Writes of the trading domain: placing and cancelling orders, market status, and the matcher's batch.

Serialisation per market is a PostgreSQL advisory lock (``LOCK_NAMESPACE``, market id), held for one
transaction: the matcher *tries* it (a worker that finds it taken re-queues the wake-up instead of waiting);
cancels and status changes *wait* for it, so they never interleave with a batch that is matching the same
orders. Placing an order takes no market lock: it only inserts a ``new`` row and a hold.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields, replace
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q

from accounts.models import AssetLimit, ClientAccount
from accounts.services import account_require_can_trade
from audit.services import audit_record, audit_values, user_or_none
from core.exceptions import Forbidden
from core.validation import require_choice
from ledger import services as ledger
from ledger.errors import InsufficientFunds
from ledger.models import LedgerAccount
from ledger.money import is_exact
from ledger.selectors import balance_get
from trading import selectors
from trading.books import book_for, book_forget
from trading.engine import Incoming
from trading.errors import InvalidOrder, MarketMisconfigured, MarketNotOpen, OrderConflict, OrderNotOpen
from trading.matching import BatchSettlement
from trading.models import (
    OPEN_STATUSES,
    FeeSchedule,
    Market,
    MarketStatus,
    Order,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from trading.settlement import buy_hold, decimal_places
from trading.wakeups import market_wake_on_commit, wake_flag_clear

LOCK_NAMESPACE = 0x7472  # first key of the two-key advisory lock: "tr"(ading); the second is the market id
LEDGER_DECIMALS = 18
RATE_DECIMALS = 8
ORDER_AUDIT_FIELDS = [
    "market", "client_order_id", "side", "type", "time_in_force", "post_only", "stp", "price", "size", "funds",
    "status", "reason", "filled_size",
]


# --- placing ----------------------------------------------------------------------------------------------


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

    @classmethod
    def of(cls, order: Order) -> OrderParams:
        return cls(**{f.name: getattr(order, f.name) for f in fields(cls)})


def order_place(*, account: ClientAccount, market: Market, side: str, type: str, size: Decimal | None = None,
                price: Decimal | None = None, funds: Decimal | None = None, time_in_force: str = TimeInForce.GTC,
                post_only: bool = False, stp: str = SelfTradePrevention.CANCEL_NEWEST,
                client_order_id: str | None = None, acting_user) -> Order:
    """Accept an order: validate it, hold what it may spend, store it as ``new`` and wake the matcher.

    Idempotent on (account, client_order_id): the same id with the same parameters returns the stored order,
    with other parameters it is a conflict.

    ``market`` may have been read long before (the API takes it from a per-process cache): the transaction reads
    the market's status and version fresh, and reloads the market if it changed.
    """
    client_order_id = client_order_id or uuid.uuid4().hex
    if len(client_order_id) > 64:
        raise InvalidOrder("A client order id has at most 64 characters.", code="invalid", field="client_order_id")
    params = _params_normalised(OrderParams(market.pk, side, type, size, price, funds, time_in_force,
                                            bool(post_only), stp))
    try:
        return _order_place(account, market, params, client_order_id, acting_user)
    except IntegrityError:
        # A concurrent request with the same client order id committed first (the unique index made us wait).
        existing = Order.objects.filter(account=account, client_order_id=client_order_id).first()
        if existing is None:
            raise
        return _replayed(existing, params)


@transaction.atomic
def _order_place(account: ClientAccount, market: Market, params: OrderParams, client_order_id: str,
                 acting_user) -> Order:
    known = _placement_reads(account, market, client_order_id)
    if known.market_version != _version(market):
        # The caller's market is stale (halted, reopened or edited since it was read, e.g. by a process's
        # market cache): read it again, and what depends on it.
        market = _market_reloaded(market.symbol)
        params = replace(params, market_id=market.pk)
        known = _placement_reads(account, market, client_order_id)
    if known.existing_order_id is not None:
        return _replayed(Order.objects.get(pk=known.existing_order_id), params)
    _market_check(market, params)
    _account_check(account)
    _limits_check(market, params, known.max_order_sizes)
    maker_rate, taker_rate = _fee_rates(market, known.fee_schedules)
    order = Order(account=account, market=market, client_order_id=client_order_id, maker_fee_rate=maker_rate,
                  taker_fee_rate=taker_rate, created_by=user_or_none(acting_user), **_params_fields(params))
    ledger_account = account.ledger_account  # authentication loads it with the account
    asset, amount = _hold_needed(order, market, ledger_account)
    # The funds are reserved when the block ends, so the client's balance row is locked only from the reservation
    # to the commit. No replay check of the hold key: it is derived from the order's (account, client order id),
    # which has just been found unused (a concurrent twin fails on the unique index and is replayed).
    with ledger.hold_placing(key=f"order:{account.pk}:{client_order_id}", account=ledger_account, asset=asset,
                             amount=amount, reason=f"order {order.side} {market.symbol}",
                             field="funds" if order.funds is not None else "size") as order.hold:
        order.save()
        audit_record(acting_user=acting_user, action="order.place", obj=order, account=account,
                     after=audit_values(order, ORDER_AUDIT_FIELDS))
    market_wake_on_commit(market.pk)
    return order


@dataclass(frozen=True)
class _PlacementReads:
    market_version: tuple | None  # the market's (id, status, updated_at) now; None if there is no such market
    existing_order_id: int | None
    max_order_sizes: dict[str, Decimal]  # asset -> this account's maximum order size, where it has one
    fee_schedules: dict[int | None, tuple[Decimal, Decimal]]  # market id (None: all markets) -> (maker, taker)


def _placement_reads(account: ClientAccount, market: Market, client_order_id: str) -> _PlacementReads:
    """What placing needs from the database, in one round trip: the market's current version (its status is
    checked fresh in the transaction), an order already stored under the client order id, the account's order
    size limits in the market's assets, and its tier's fee schedules."""
    if connection.vendor != "postgresql":
        return _placement_reads_orm(account, market, client_order_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'market', id, status, NULL::numeric, NULL::numeric, updated_at FROM trading_market"
            " WHERE symbol = %s"
            " UNION ALL"
            " SELECT 'order', id, NULL, NULL, NULL, NULL FROM trading_order"
            " WHERE account_id = %s AND client_order_id = %s"
            " UNION ALL"
            " SELECT 'limit', NULL, asset_id, max_order_size, NULL, NULL FROM accounts_assetlimit"
            " WHERE account_id = %s AND asset_id IN (%s, %s) AND max_order_size IS NOT NULL"
            " UNION ALL"
            " SELECT 'fees', market_id, NULL, maker_fee_rate, taker_fee_rate, NULL FROM trading_feeschedule"
            " WHERE tier = %s AND (market_id = %s OR market_id IS NULL)",
            [market.symbol, account.pk, client_order_id, account.pk, market.base_id, market.quote_id, account.tier,
             market.pk],
        )
        rows = cursor.fetchall()
    return _PlacementReads(
        market_version=next(((id_, status, at) for kind, id_, status, _, _, at in rows if kind == "market"), None),
        existing_order_id=next((id_ for kind, id_, *_ in rows if kind == "order"), None),
        max_order_sizes={asset: limit for kind, _, asset, limit, *_ in rows if kind == "limit"},
        fee_schedules={market_id: (maker, taker) for kind, market_id, _, maker, taker, _ in rows if kind == "fees"},
    )


def _placement_reads_orm(account: ClientAccount, market: Market, client_order_id: str) -> _PlacementReads:
    """The same reads as four ORM queries, for the embedded SQLite default (the query above is PostgreSQL's)."""
    limits = AssetLimit.objects.filter(account=account, asset_id__in=[market.base_id, market.quote_id],
                                       max_order_size__isnull=False)
    schedules = FeeSchedule.objects.filter(Q(market=market) | Q(market__isnull=True), tier=account.tier)
    return _PlacementReads(
        market_version=Market.objects.filter(symbol=market.symbol).values_list("id", "status", "updated_at").first(),
        existing_order_id=Order.objects.filter(account=account, client_order_id=client_order_id)
        .values_list("id", flat=True).first(),
        max_order_sizes=dict(limits.values_list("asset_id", "max_order_size")),
        fee_schedules={m: (maker, taker) for m, maker, taker in
                       schedules.values_list("market_id", "maker_fee_rate", "taker_fee_rate")},
    )


def _version(market: Market) -> tuple:
    return market.pk, market.status, market.updated_at


def _market_reloaded(symbol: str) -> Market:
    market = selectors.market_reloaded(symbol)
    if market is None:  # deleted since the caller read it
        raise InvalidOrder(f"There is no market {symbol!r}.", code="does_not_exist", field="market")
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
    for name in ("size", "price", "funds"):
        value = getattr(p, name)
        if value is not None and (not isinstance(value, Decimal) or not value.is_finite() or value <= 0):
            raise InvalidOrder(f"{name} must be a positive decimal.", code="not_positive", field=name)
    if p.type == OrderType.LIMIT:
        _limit_shape_check(p)
        return p
    _market_shape_check(p)
    tif = TimeInForce.IOC if p.time_in_force == TimeInForce.GTC else p.time_in_force
    return OrderParams(**{**_params_fields(p), "time_in_force": tif})


def _limit_shape_check(p: OrderParams) -> None:
    if p.price is None:
        raise InvalidOrder("A limit order needs a price.", code="price_required", field="price")
    if p.size is None:
        raise InvalidOrder("A limit order needs a size.", code="size_required", field="size")
    if p.funds is not None:
        raise InvalidOrder("Only market buys may give funds.", code="funds_not_allowed", field="funds")
    if p.post_only and p.time_in_force != TimeInForce.GTC:
        raise InvalidOrder("Post-only orders must be good-till-cancelled.", code="post_only_requires_gtc",
                           field="post_only")


def _market_shape_check(p: OrderParams) -> None:
    if p.price is not None:
        raise InvalidOrder("A market order takes no price.", code="price_not_allowed", field="price")
    if p.post_only:
        raise InvalidOrder("A market order cannot be post-only.", code="post_only_requires_limit", field="post_only")
    if (p.size is None) == (p.funds is None):
        raise InvalidOrder("A market order needs exactly one of size and funds.", code="size_or_funds",
                           field="size")
    if p.funds is not None and p.side != Side.BUY:
        raise InvalidOrder("Only market buys may give funds.", code="funds_not_allowed", field="funds")
    if p.funds is not None and p.time_in_force == TimeInForce.FOK:
        raise InvalidOrder("A market buy by funds cannot be fill-or-kill.", code="fok_requires_size",
                           field="time_in_force")


def _market_check(market: Market, p: OrderParams) -> None:
    if market.status != MarketStatus.OPEN:
        raise MarketNotOpen(f"{market.symbol} is {market.get_status_display().lower()}: no new orders.",
                            field="market")
    if decimal_places(market.tick_size) + decimal_places(market.lot_size) + RATE_DECIMALS > LEDGER_DECIMALS:
        raise MarketMisconfigured(f"{market.symbol}: tick and lot are too fine for exact fee accounting.")
    if p.price is not None and p.price % market.tick_size != 0:
        raise InvalidOrder(f"The price must be a multiple of the tick size {market.tick_size.normalize()}.",
                           code="invalid_tick", field="price")
    if p.size is not None:
        _size_check(market, p.size)
    if p.funds is not None and not is_exact(p.funds, market.quote.precision):
        raise InvalidOrder(f"{market.quote_id} amounts have at most {market.quote.precision} decimal places.",
                           code="too_precise", field="funds")


def _size_check(market: Market, size: Decimal) -> None:
    if not is_exact(size, market.base.precision):
        raise InvalidOrder(f"{market.base_id} amounts have at most {market.base.precision} decimal places.",
                           code="too_precise", field="size")
    if size % market.lot_size != 0:
        raise InvalidOrder(f"The size must be a multiple of the lot size {market.lot_size.normalize()}.",
                           code="invalid_lot", field="size")
    if size < market.min_size:
        raise InvalidOrder(f"The size is below the minimum {market.min_size.normalize()}.",
                           code="size_below_minimum", field="size")
    if size > market.max_size:
        raise InvalidOrder(f"The size is above the maximum {market.max_size.normalize()}.",
                           code="size_above_maximum", field="size")


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
                               code="order_size_limit_exceeded", field=field)


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


# --- cancelling ---------------------------------------------------------------------------------------------

USER_REQUESTED = "user_requested"
CANCELLED_BY_OPERATIONS = "cancelled_by_operations"


@transaction.atomic
def order_cancel(*, order: Order, acting_user, reason: str = USER_REQUESTED) -> Order:
    """Cancel an order that is not done yet and give back what its hold still reserves.

    Cancelling a cancelled order returns it unchanged; a filled or rejected one is ``order_not_open``.
    """
    _market_lock(order.market_id, wait=True)
    order = Order.objects.select_for_update(of=("self",), no_key=True).select_related("hold").get(pk=order.pk)
    if order.status == OrderStatus.CANCELLED:
        return order
    if order.status not in OPEN_STATUSES:
        raise OrderNotOpen(f"Order {order.pk} is {order.status} and cannot be cancelled.")
    seq = _cancel_seq_next(order.market_id) if order.status != OrderStatus.NEW else None
    _cancelled([order], seq, reason, acting_user)
    return order


@transaction.atomic
def orders_cancel_all(*, account: ClientAccount, market: Market | None = None, acting_user,
                      reason: str = USER_REQUESTED) -> list[Order]:
    """Cancel every open order of ``account`` (in ``market`` only, if given). Returns the cancelled orders."""
    scope = Order.objects.filter(account=account, status__in=OPEN_STATUSES)
    if market is not None:
        scope = scope.filter(market=market)
    market_ids = sorted(set(scope.values_list("market_id", flat=True)))
    for market_id in market_ids:  # in id order: two cancel-alls never wait for each other in a cycle
        _market_lock(market_id, wait=True)
    orders = list(scope.filter(market_id__in=market_ids).select_for_update(of=("self",), no_key=True).select_related("hold").order_by("id"))
    for market_id in market_ids:
        in_market = [o for o in orders if o.market_id == market_id]
        resting = any(o.status != OrderStatus.NEW for o in in_market)
        _cancelled(in_market, _cancel_seq_next(market_id) if resting else None, reason, acting_user)
    return orders


def _cancelled(orders: list[Order], seq: int | None, reason: str, acting_user) -> None:
    """Mark orders of one market cancelled; resting ones carry ``seq`` so matchers drop them from the book."""
    ledger.holds_release(holds=[o.hold for o in orders if o.hold is not None])
    for order in orders:
        before = audit_values(order, ["status", "reason"])
        if order.status != OrderStatus.NEW:
            order.cancel_seq = seq
        order.status, order.reason = OrderStatus.CANCELLED, reason[:64]
        order.save(update_fields=["status", "reason", "cancel_seq", "updated_at"])
        audit_record(acting_user=acting_user, action="order.cancel", obj=order, account=order.account,
                     before=before, after=audit_values(order, ["status", "reason", "filled_size"]))


def _cancel_seq_next(market_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE trading_market SET cancel_seq = cancel_seq + 1 WHERE id = %s RETURNING cancel_seq", [market_id]
        )
        return cursor.fetchone()[0]


# --- markets ------------------------------------------------------------------------------------------------


@transaction.atomic
def market_status_set(*, market: Market, status: str, acting_user, reason: str = "") -> Market:
    """Open, halt or set a market cancel-only. Waits for a running batch, so once this commits no order of a
    halted market is matched; reopening wakes the matcher for the orders that waited."""
    require_choice(status, MarketStatus.values, field="status", error=InvalidOrder)
    if acting_user is not None and not acting_user.has_perm("trading.halt_market"):
        raise Forbidden("You do not have permission to change a market's status.", code="permission_denied")
    _market_lock(market.pk, wait=True)
    market = Market.objects.select_for_update(no_key=True).get(pk=market.pk)
    before = {"status": market.status}
    market.status = status
    market.save(update_fields=["status", "updated_at"])
    audit_record(acting_user=acting_user, action="market.status_set", obj=market, before=before,
                 after={"status": status, "reason": reason})
    if status == MarketStatus.OPEN:
        market_wake_on_commit(market.pk)
    return market


def _market_lock(market_id: int, *, wait: bool) -> bool:
    """Take the market's transaction-scoped advisory lock (PostgreSQL; elsewhere writes are serialised anyway)."""
    if connection.vendor != "postgresql":
        return True
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s::int, %s::int)::text", [LOCK_NAMESPACE, market_id])
        return wait or cursor.fetchone()[0] == "true"


# --- matching -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchSummary:
    market_id: int
    locked: bool = True
    status: str = MarketStatus.OPEN
    orders: int = 0
    fills: int = 0
    more: bool = False


def market_match(*, market_id: int, wait: bool = False) -> MatchSummary:
    """Match the market's ``new`` orders, oldest first, up to ``MATCHER_BATCH_SIZE`` of them, and settle every
    fill, all in one transaction. ``more`` says whether new orders remain for another batch.

    Without ``wait`` a market locked by another transaction returns at once with ``locked=False``.
    Replays are harmless: a second run finds no ``new`` orders left. A crash rolls everything back, including
    this process's in-memory book, and the next run redoes the batch.
    """
    try:
        with transaction.atomic():
            if not _market_lock(market_id, wait=wait):
                return MatchSummary(market_id, locked=False)
            wake_flag_clear(market_id)
            market = Market.objects.select_related("base", "quote").filter(pk=market_id).first()
            if market is None:
                return MatchSummary(market_id, status="missing")
            if market.status != MarketStatus.OPEN:
                return MatchSummary(market_id, status=market.status)
            batch_size = settings.MATCHER_BATCH_SIZE
            orders = list(
                Order.objects.filter(market=market, status=OrderStatus.NEW).select_related("hold")
                .order_by("id")[:batch_size]
            )
            if not orders:
                return MatchSummary(market_id)
            fills = _batch_match(market, orders)
            return MatchSummary(market_id, orders=len(orders), fills=fills, more=len(orders) == batch_size)
    except BaseException:
        book_forget(market_id)
        raise


def _batch_match(market: Market, orders: list[Order]) -> int:
    cached = book_for(market)
    outcomes = [cached.book.submit(_incoming(order)) for order in orders]
    settlement = BatchSettlement(market=market, takers=orders)
    fills = settlement.settle(outcomes)
    Market.objects.filter(pk=market.pk).update(match_seq=F("match_seq") + 1)
    cached.match_seq = market.match_seq + 1
    return fills


def _incoming(order: Order) -> Incoming:
    funds = order.funds
    if funds is None and order.type == OrderType.MARKET and order.side == Side.BUY:
        funds = order.hold.amount  # a market buy by size spends at most what it holds
    return Incoming(order.pk, order.account_id, order.side, order.type, order.price, order.size, funds,
                    order.time_in_force, order.post_only, order.stp, order.taker_fee_rate)
