"""The events trading writes, in the transaction of the change (README "Events"): one INSERT per call.

- placing: ``order.accepted`` and ``hold.placed``;
- cancelling: ``order.cancelled`` and ``hold.released`` per order;
- a matcher batch: ``fill.created`` for each side of each fill (with the balances after it), the new state of
  every order the batch changed (``order.open``, ``order.partially_filled``, ``order.filled``,
  ``order.cancelled``, ``order.rejected``) and ``hold.released`` for each order that ended with funds left;
- ``market.status_changed`` (public: no account).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.representation import fixed, iso
from events.services import NewEvent, events_record
from events.types import EventType
from ledger.models import Balance, HoldStatus
from ledger.representations import hold_data
from trading.models import Market, Order, OrderStatus, Side
from trading.representations import fill_data, market_data, market_places, order_data

ORDER_EVENT = {
    OrderStatus.NEW: EventType.ORDER_ACCEPTED,
    OrderStatus.OPEN: EventType.ORDER_OPEN,
    OrderStatus.PARTIALLY_FILLED: EventType.ORDER_PARTIALLY_FILLED,
    OrderStatus.FILLED: EventType.ORDER_FILLED,
    OrderStatus.CANCELLED: EventType.ORDER_CANCELLED,
    OrderStatus.REJECTED: EventType.ORDER_REJECTED,
}
ZERO = Decimal(0)


def order_placed(order: Order, market: Market) -> None:
    events_record([
        NewEvent(EventType.ORDER_ACCEPTED, order.account_id, order_data(order, market=market), market.pk),
        NewEvent(EventType.HOLD_PLACED, order.account_id, hold_data(order.hold)),
    ])


def orders_cancelled(orders: list[Order]) -> None:
    """Orders just cancelled (one market), their holds released by the caller."""
    if not orders:
        return
    market = Market.objects.select_related("base", "quote").get(pk=orders[0].market_id)
    events = []
    for order in orders:
        events.append(NewEvent(EventType.ORDER_CANCELLED, order.account_id, order_data(order, market=market),
                               market.pk))
        events.extend(_released(order))
    events_record(events)


def market_status_changed(market: Market) -> None:
    market = Market.objects.select_related("base", "quote").get(pk=market.pk)
    events_record([NewEvent(EventType.MARKET_STATUS_CHANGED, None, market_data(market), market.pk)])


def _released(order: Order, updated_at: str | None = None) -> list[NewEvent]:
    """``hold.released`` if ending ``order`` gave funds back: its hold less what its fills captured."""
    hold = order.hold
    if hold is None or hold.status != HoldStatus.RELEASED:
        return []
    captured = order.filled_size if order.side == Side.SELL else order.settled_quote
    released = hold.amount - captured
    if released <= 0:
        return []
    return [NewEvent(EventType.HOLD_RELEASED, order.account_id,
                     hold_data(hold, released=released, updated_at=updated_at))]


# --- a matcher batch ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class FillView:
    """A fill of the batch with the attributes ``fill_data`` reads (the batch writes fills without models)."""

    pk: int
    maker_order_id: int
    taker_order_id: int
    maker_account_id: int
    taker_account_id: int
    price: Decimal
    size: Decimal
    quote_amount: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    buyer_quote: Decimal
    seller_quote: Decimal
    aggressor_side: str
    created_at: datetime


def batch_settled(settlement, fill_ids: list[int]) -> None:
    """Every event of a settled batch (``trading.matching.BatchSettlement``), in one statement: fills in the
    order they happened, then the orders' new states, then the holds released."""
    market, now = settlement.market, settlement.now
    market_id, at = market.pk, iso(now)
    fills = [FillView(fill_id, *row[1:]) for fill_id, row in zip(fill_ids, settlement.fills)]
    events = []
    if fills:
        totals = _totals_after_each_fill(settlement, fills)
        for fill, (buyer_totals, seller_totals) in zip(fills, totals):
            taker_buys = fill.aggressor_side == Side.BUY
            for account_id, is_taker in ((fill.taker_account_id, True), (fill.maker_account_id, False)):
                data = fill_data(fill, account_id=account_id, market=market, created_at=at)
                data["balances"] = buyer_totals if is_taker == taker_buys else seller_totals
                events.append(NewEvent(EventType.FILL_CREATED, account_id, data, market_id, now))
    for order in settlement.changed.values():
        events.append(NewEvent(ORDER_EVENT[order.status], order.account_id,
                               order_data(order, market=market, updated_at=at), market_id, now))
    for order in settlement.ended.values():
        events.extend(_released(order, at))
    events_record(events)


def _totals_after_each_fill(settlement, fills: list[FillView]) -> list[tuple[dict, dict]]:
    """Per fill, the buyer's and the seller's total balances in the market's two assets right after it, as
    rendered strings: the final balances (read under the batch's balance locks) less what later fills moved."""
    market = settlement.market
    base, quote = market.base_id, market.quote_id
    base_places, quote_places, _ = market_places(market)
    ledger_ids = {client_id: la.pk for client_id, la in settlement.ledger_accounts.items()}
    total: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    for account_id, asset, amount in Balance.objects.filter(
        account_id__in=list(ledger_ids.values()), asset_id__in=[base, quote]
    ).values_list("account_id", "asset_id", "amount"):
        total[(account_id, asset)] = amount
    out = []
    for fill in reversed(fills):
        buyer, seller = ((fill.taker_account_id, fill.maker_account_id) if fill.aggressor_side == Side.BUY
                         else (fill.maker_account_id, fill.taker_account_id))
        b, s = ledger_ids[buyer], ledger_ids[seller]
        out.append((
            {base: fixed(total[(b, base)], base_places), quote: fixed(total[(b, quote)], quote_places)},
            {base: fixed(total[(s, base)], base_places), quote: fixed(total[(s, quote)], quote_places)},
        ))
        # Undo this fill: the buyer received base and paid quote, the seller the reverse.
        total[(b, base)] -= fill.size
        total[(b, quote)] += fill.buyer_quote
        total[(s, base)] += fill.size
        total[(s, quote)] -= fill.seller_quote
    out.reverse()
    return out

