"""The events trading writes, in the transaction of the change (README "Events"): one INSERT per call.

- placing: ``order.accepted`` and ``hold.placed``;
- cancelling, or ending a poisoned order: ``order.cancelled`` / ``order.rejected`` and ``hold.released`` per order;
- a matcher batch: ``fill.created`` for each side of each fill (with the balances after it), ``order.triggered``
  for each stop that triggered (in trigger order), the new state of every order the batch changed
  (``order.open``, ``order.partially_filled``, ``order.filled``, ``order.cancelled``, ``order.rejected``,
  ``order.pending_trigger``, ``order.expired``) and ``hold.released`` for each order that ended with funds left,
  as drafts that the sequencer renders after commit (``events.rendering``: the matcher's budget);
- amending: ``order.amended`` (reduced in place), or ``order.cancelled`` (reason ``replaced``) and the
  replacement's ``order.accepted``, with their holds' events;
- ``market.status_changed`` (public: no account);
- ``kill_switch.engaged`` and ``kill_switch.released`` (the account's trading controls);
- ``book.changed`` (public, for the WebSocket streamer only: README "Streams"): after every transaction that
  changes the resting book (a matcher batch, a cancel of resting orders, an amend), the orders it changed with what each
  still rests, and the market's book sequence after it (``Market.book_sequence``).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from core.db import models_by_id
from core.representation import fixed, iso
from events.rendering import draft
from events.services import NewEvent, events_record
from events.types import BOOK_CHANGED, EventType
from ledger.models import Balance, Hold, HoldStatus
from ledger.representations import hold_data
from trading.models import RESTING_STATUSES, AccountTradingControl, Fill, Market, Order, OrderStatus, Side
from trading.representations import fill_data, market_data, market_places, order_data, trading_control_data
from trading.selectors import book_sequence

ORDER_EVENT = {
    OrderStatus.NEW: EventType.ORDER_ACCEPTED,
    OrderStatus.OPEN: EventType.ORDER_OPEN,
    OrderStatus.PARTIALLY_FILLED: EventType.ORDER_PARTIALLY_FILLED,
    OrderStatus.FILLED: EventType.ORDER_FILLED,
    OrderStatus.CANCELLED: EventType.ORDER_CANCELLED,
    OrderStatus.REJECTED: EventType.ORDER_REJECTED,
    OrderStatus.PENDING_TRIGGER: EventType.ORDER_PENDING_TRIGGER,
    OrderStatus.EXPIRED: EventType.ORDER_EXPIRED,
}
ZERO = Decimal(0)


def order_placed(order: Order, market: Market) -> list[NewEvent]:
    """The events of a placed order, for placement to write with the order (``trading.sql.placement_write``)."""
    return [
        NewEvent(EventType.ORDER_ACCEPTED, order.account_id, order_data(order, market=market), market.pk),
        NewEvent(EventType.HOLD_PLACED, order.account_id, hold_data(order.hold)),
    ]


def orders_ended(orders: list[Order]) -> None:
    """Orders just cancelled or rejected outside a matcher batch (one market), their holds released by the
    caller: their new state and what each hold gave back."""
    if not orders:
        return
    market = Market.objects.select_related("base", "quote").get(pk=orders[0].market_id)
    events = []
    for order in orders:
        events.append(NewEvent(ORDER_EVENT[order.status], order.account_id, order_data(order, market=market),
                               market.pk))
        events.extend(_released(order))
    resting = [o for o in orders if o.cancel_seq is not None]
    if resting:  # read under the market lock after this cancel's number: the sequence it made
        events.append(_book_event(market.pk, market.book_sequence, resting))
    events_record(events)


def order_amended(order: Order) -> None:
    """An order reduced in place (it kept its priority)."""
    events = [NewEvent(EventType.ORDER_AMENDED, order.account_id, order_data(order), order.market_id)]
    if order.status != OrderStatus.NEW:  # it took a cancel number under the market lock: the book's next version
        events.append(_book_event(order.market_id, book_sequence(market_id=order.market_id), [order]))
    events_record(events)


def _book_event(market_id: int, sequence: int, orders, *, reset: bool = False) -> NewEvent:
    """What one transaction did to the resting book: per order changed, [id, side, price, size still resting]
    (unformatted; "0": off the book). ``reset``: the changes are not all listed, reread the book."""
    changes = [[o.pk, str(o.side), None if o.price is None else str(o.price),
                str(o.size - o.filled_size) if o.status in RESTING_STATUSES else "0"] for o in orders]
    return NewEvent(BOOK_CHANGED, None, {"sequence": sequence, "orders": changes, "reset": reset}, market_id)


def book_changed(market: Market, sequence: int, orders, *, reset: bool = False) -> None:
    """A matcher batch (or its isolation run) changed the book of ``market`` to ``sequence``."""
    events_record([_book_event(market.pk, sequence, orders, reset=reset)])


def market_status_changed(market: Market) -> None:
    market = Market.objects.select_related("base", "quote").get(pk=market.pk)
    events_record([NewEvent(EventType.MARKET_STATUS_CHANGED, None, market_data(market), market.pk)])


def kill_switch_changed(control: AccountTradingControl) -> None:
    """The account's kill switch was engaged or released (its orders' cancellations are events of their own)."""
    kind = EventType.KILL_SWITCH_ENGAGED if control.kill_switch else EventType.KILL_SWITCH_RELEASED
    events_record([NewEvent(kind, control.account_id, trading_control_data(control, account_id=control.account_id))])


def _released_amount(order: Order) -> Decimal | None:
    """What ending ``order`` gave back from its hold (its hold less what its fills captured), if anything."""
    hold = order.hold
    if hold is None or hold.status != HoldStatus.RELEASED:
        return None
    captured = order.filled_size if order.side == Side.SELL else order.settled_quote
    released = hold.amount - captured
    return released if released > 0 else None


def _released(order: Order) -> list[NewEvent]:
    released = _released_amount(order)
    if released is None:
        return []
    return [NewEvent(EventType.HOLD_RELEASED, order.account_id, hold_data(order.hold, released=released))]


# --- a matcher batch: drafts, rendered after commit by the sequencer (events.rendering) ---------------------


def batch_settled(settlement, fill_ids: list[int]) -> None:
    """Every event of a settled batch (``trading.services.settlement.BatchSettlement``), in one statement: fills in the
    order they happened, then the orders' new states, then the holds released. Written as drafts (the values
    that changed, unformatted): the sequencer renders them with the ``render_*`` functions below."""
    market, now = settlement.market, settlement.now
    market_id, at = market.pk, iso(now)
    events = []
    if settlement.fills:
        totals = _totals_after_each_fill(settlement)
        for fill_id, row, (buyer_totals, seller_totals) in zip(fill_ids, settlement.fills, totals):
            _, _, _, maker_account_id, taker_account_id, *_, aggressor_side, _ = row
            taker_buys = aggressor_side == Side.BUY
            events.append(NewEvent(EventType.FILL_CREATED, taker_account_id, draft(
                "fill", [fill_id, taker_account_id, buyer_totals if taker_buys else seller_totals]), market_id, now))
            events.append(NewEvent(EventType.FILL_CREATED, maker_account_id, draft(
                "fill", [fill_id, maker_account_id, seller_totals if taker_buys else buyer_totals]), market_id, now))
    for order in settlement.triggered:
        events.append(NewEvent(EventType.ORDER_TRIGGERED, order.account_id, _order_draft(order, at), market_id, now))
    for order in settlement.changed.values():
        events.append(NewEvent(ORDER_EVENT[order.status], order.account_id, _order_draft(order, at), market_id, now))
    for order in settlement.ended.values():
        released = _released_amount(order)
        if released:
            events.append(NewEvent(EventType.HOLD_RELEASED, order.account_id,
                                   draft("hold", [order.hold.pk, str(released), at]), None, now))
    events_record(events)


def _order_draft(order: Order, at: str) -> dict:
    # The size last: self-trade prevention decrement_and_cancel may have reduced it (older drafts have none).
    return draft("order", [order.pk, str(order.status), order.reason, str(order.filled_size), str(order.filled_quote),
                           str(order.fees_paid), str(order.settled_quote), at,
                           None if order.size is None else str(order.size)])


def _totals_after_each_fill(settlement) -> list[tuple[dict, dict]]:
    """Per fill, the buyer's and the seller's total balances in the market's two assets right after it
    (unformatted): the final balances (read under the batch's balance locks) less what later fills moved."""
    market = settlement.market
    base, quote = market.base_id, market.quote_id
    ledger_ids = {client_id: la.pk for client_id, la in settlement.ledger_accounts.items()}
    total: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    for account_id, asset, amount in Balance.objects.filter(
        account_id__in=list(ledger_ids.values()), asset_id__in=[base, quote]
    ).values_list("account_id", "asset_id", "amount"):
        total[(account_id, asset)] = amount
    out = []
    for row in reversed(settlement.fills):
        _, _, _, maker_account_id, taker_account_id, _, size, _, _, _, buyer_quote, seller_quote, side, _ = row
        buyer, seller = (taker_account_id, maker_account_id) if side == Side.BUY else (maker_account_id,
                                                                                       taker_account_id)
        b, s = ledger_ids[buyer], ledger_ids[seller]
        out.append(({base: str(total[(b, base)]), quote: str(total[(b, quote)])},
                    {base: str(total[(s, base)]), quote: str(total[(s, quote)])}))
        # Undo this fill: the buyer received base and paid quote, the seller the reverse.
        total[(b, base)] -= size
        total[(b, quote)] += buyer_quote
        total[(s, base)] += size
        total[(s, quote)] -= seller_quote
    out.reverse()
    return out


_markets_seen: dict[int, Market] = {}


def _markets(market_ids) -> dict[int, Market]:
    """Markets with their assets, remembered by the rendering process: a market's symbol, assets and tick never
    change once orders exist (the console makes them read-only), and that is all rendering reads."""
    missing = set(market_ids) - _markets_seen.keys()
    if missing:
        _markets_seen.update(Market.objects.select_related("base", "quote").in_bulk(missing))
    return _markets_seen


def render_orders(drafts: list[list]) -> list[dict]:
    """Order drafts -> orders as ``GET /orders/<id>/`` showed them then: the order's parameters from its row
    (they never change), its state from the draft."""
    orders = models_by_id(Order, (d[0] for d in drafts))
    markets = _markets(o.market_id for o in orders.values())
    out = []
    for order_id, status, reason, filled_size, filled_quote, fees_paid, settled_quote, updated_at, *size in drafts:
        order = orders[order_id]
        order.status, order.reason = status, reason
        if size and size[0] is not None:
            order.size = Decimal(size[0])
        order.filled_size, order.filled_quote = Decimal(filled_size), Decimal(filled_quote)
        order.fees_paid, order.settled_quote = Decimal(fees_paid), Decimal(settled_quote)
        out.append(order_data(order, market=markets[order.market_id], updated_at=updated_at))
    return out


def render_fills(drafts: list[list]) -> list[dict]:
    """Fill drafts -> the fill as that side sees it (``GET /fills/``) and its balances after it."""
    fills = models_by_id(Fill, (d[0] for d in drafts))
    markets = _markets(f.market_id for f in fills.values())
    out = []
    for fill_id, account_id, balances in drafts:
        fill = fills[fill_id]
        market = markets[fill.market_id]
        base_places, quote_places, _ = market_places(market)
        data = fill_data(fill, account_id=account_id, market=market)
        data["balances"] = {asset: fixed(Decimal(amount), base_places if asset == market.base_id else quote_places)
                            for asset, amount in balances.items()}
        out.append(data)
    return out


def render_holds(drafts: list[list]) -> list[dict]:
    """Hold drafts -> the released hold (released holds never change again)."""
    holds = models_by_id(Hold, (d[0] for d in drafts))
    return [hold_data(holds[hold_id], released=Decimal(released), updated_at=updated_at)
            for hold_id, released, updated_at in drafts]
