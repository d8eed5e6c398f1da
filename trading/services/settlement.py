"""Persisting one matcher batch: the engine's outcomes become fills, ledger entries, hold changes and order
updates, written with a handful of bulk statements inside the caller's transaction.

Queries per batch, whatever its size: makers not in the batch (1), client ledger accounts with the fee account
(1), the ledger batch (``ledger.services.entries_post``: replay check, one balance lock, hold captures,
hold releases, balances, entries, postings), fills (1), orders (1), candles (1: ``trading.sql.candles_upsert``,
one row per granularity whatever the number of fills, since a batch's fills share one time).
"""

from __future__ import annotations

from core.db import rows_insert, rows_update
from ledger import services as ledger
from ledger.models import LedgerAccount, Purpose
from trading import clock, engine, outbox, sql
from trading.candles import FillTrade, candles_of
from trading.fill_amounts import FillAmounts, fill_apply
from trading.models import Fill, Market, Order, OrderStatus, Side
from trading.services.order_types import hold_shrink

ORDER_FIELDS = ["status", "reason", "size", "filled_size", "filled_quote", "fees_paid", "settled_quote", "triggered_at",
                "book_priority", "updated_at"]
FILL_FIELDS = ["market", "maker_order", "taker_order", "maker_account", "taker_account", "price", "size",
               "quote_amount", "maker_fee", "taker_fee", "buyer_quote", "seller_quote", "aggressor_side", "created_at",
               "entry"]
TRADE_FIELDS = ("price", "size", "quote_amount", "created_at")  # a fill row's values for its candles
TRADE_AT = {name: FILL_FIELDS.index(name) for name in TRADE_FIELDS}


class BatchSettlement:
    def __init__(self, *, market: Market, takers: list[Order], expired: list[engine.Expired] = ()):
        self.market = market
        self.expired = expired  # good-til-time orders the book just expired
        self.orders: dict[int, Order] = {o.pk: o for o in takers}
        self.changed: dict[int, Order] = {}
        self.ended: dict[int, Order] = {}
        self.triggered: list[Order] = []  # stops that triggered, in trigger order
        self.decremented: dict[int, Order] = {}  # sizes reduced by self-trade prevention decrement_and_cancel
        self.fills: list[tuple] = []  # rows of FILL_FIELDS but the entry
        self.specs: list[ledger.EntrySpec] = []
        self.now = clock.now()  # every fill of the batch, and so its candles, is of this instant
        self.ledger_accounts: dict[int, LedgerAccount] = {}
        self.fees_account: LedgerAccount | None = None

    def settle(self, outcomes: list[engine.Outcome]) -> int:
        """Apply the expiries, then the outcomes in the order they happened (each followed by the stops it
        triggered), and write everything. Returns the number of fills."""
        outcomes = [each for outcome in outcomes for each in outcome.all()]
        expired = self.expired
        self._makers_load(outcomes, expired)
        self.ledger_accounts, self.fees_account = ledger.client_and_firm_accounts(
            {o.account_id for o in self.orders.values()}, Purpose.FEES)
        for gone in expired:
            self._end(self.orders[gone.order_id], OrderStatus.EXPIRED, engine.EXPIRED_REASON)
        for outcome in outcomes:
            self._outcome_apply(outcome)
        self._write()
        return len(self.fills)

    def _makers_load(self, outcomes: list[engine.Outcome], expired) -> None:
        ids = ({m.maker_id for o in outcomes for m in o.matches}
               | {c.order_id for o in outcomes for c in o.maker_cancels}
               | {d.order_id for o in outcomes for d in o.maker_decrements} | {o.order_id for o in outcomes}
               | {x.order_id for x in expired})
        missing = ids - self.orders.keys()
        if missing:
            self.orders.update({o.pk: o for o in sql.orders_with_holds(missing)})

    def _outcome_apply(self, outcome: engine.Outcome) -> None:
        taker = self.orders[outcome.order_id]
        if outcome.triggered:
            taker.triggered_at, taker.book_priority = self.now, outcome.priority
            self.triggered.append(taker)
        for cancel in outcome.maker_cancels:
            self._end(self.orders[cancel.order_id], OrderStatus.CANCELLED, cancel.reason)
        for decrement in outcome.maker_decrements:  # self-trade prevention decrement_and_cancel
            maker = self.orders[decrement.order_id]
            maker.size -= decrement.size
            self.changed[maker.pk] = self.decremented[maker.pk] = maker
        if outcome.decremented and outcome.status != engine.CANCELLED:  # a cancelled order keeps its size
            taker.size -= outcome.decremented
            self.decremented[taker.pk] = taker
        for match in outcome.matches:
            self._fill(match)
        if outcome.status in (engine.OPEN, engine.PARTIALLY_FILLED, engine.PENDING):
            taker.status = outcome.status
            self.changed[taker.pk] = taker
        else:
            self._end(taker, outcome.status, outcome.reason)

    def _end(self, order: Order, status: str, reason: str = "") -> None:
        order.status, order.reason = status, reason
        self.changed[order.pk] = order
        self.ended[order.pk] = order

    def _fill(self, match: engine.Match) -> None:
        maker, taker = self.orders[match.maker_id], self.orders[match.taker_id]
        buyer, seller = (taker, maker) if match.aggressor_side == Side.BUY else (maker, taker)
        amounts = fill_apply(
            buyer=buyer, seller=seller, price=match.price, size=match.size,
            buyer_rate=buyer.taker_fee_rate if buyer is taker else buyer.maker_fee_rate,
            seller_rate=seller.taker_fee_rate if seller is taker else seller.maker_fee_rate,
            quote_precision=self.market.quote.precision,
        )
        if maker.filled_size == maker.size:
            self._end(maker, OrderStatus.FILLED)
        else:
            maker.status = OrderStatus.PARTIALLY_FILLED
            self.changed[maker.pk] = maker
        self.specs.append(self._entry_spec(match, buyer, seller, amounts))
        self.fills.append(self._fill_row(match, maker, taker, buyer, amounts))

    def _entry_spec(self, match: engine.Match, buyer: Order, seller: Order, amounts: FillAmounts) -> ledger.EntrySpec:
        base, quote = self.market.base_id, self.market.quote_id
        buyer_account, seller_account = self.ledger_accounts[buyer.account_id], self.ledger_accounts[seller.account_id]
        legs = [ledger.debit(seller_account, base, match.size), ledger.credit(buyer_account, base, match.size)]
        captures = [ledger.Capture(seller.hold, match.size)]
        if amounts.buyer_quote:
            legs.append(ledger.debit(buyer_account, quote, amounts.buyer_quote))
            captures.append(ledger.Capture(buyer.hold, amounts.buyer_quote))
        if amounts.seller_quote:
            legs.append(ledger.credit(seller_account, quote, amounts.seller_quote))
        if amounts.fee_revenue:
            legs.append(ledger.credit(self.fees_account, quote, amounts.fee_revenue))
        return ledger.EntrySpec(
            key=f"fill:{match.maker_id}:{match.taker_id}",
            kind="trade",
            legs=legs,
            captures=captures,
            memo=f"{self.market.symbol} {match.aggressor_side} {match.size.normalize()} @ {match.price.normalize()}",
        )

    def _fill_row(self, match: engine.Match, maker: Order, taker: Order, buyer: Order, amounts: FillAmounts) -> tuple:
        """The fill's values in ``FILL_FIELDS`` order, but for the entry, known once the entries are written."""
        maker_fee, taker_fee = (
            (amounts.buyer_fee, amounts.seller_fee) if buyer is maker else (amounts.seller_fee, amounts.buyer_fee)
        )
        return (self.market.pk, maker.pk, taker.pk, maker.account_id, taker.account_id, match.price, match.size,
                amounts.notional, maker_fee, taker_fee, amounts.buyer_quote, amounts.seller_quote,
                match.aggressor_side, self.now)

    def _write(self) -> None:
        # Orders that ended give back what their holds still reserve once this batch's captures are taken.
        releases = [o.hold for o in self.ended.values() if o.hold is not None]
        entries = ledger.entries_post(specs=self.specs, releases=releases)
        fill_ids = dict(rows_insert(Fill, FILL_FIELDS, [(*row, entry.pk) for row, entry in zip(self.fills, entries)],
                                    returning=["entry", "id"]))
        ids = [fill_ids[entry.pk] for entry in entries]
        _orders_save(list(self.changed.values()), self.now)
        for order in self.decremented.values():
            if order.pk not in self.ended:  # an order that ended gave its whole hold back above
                order.market = self.market
                hold_shrink(order)
        self._candles_roll_up(ids)
        outbox.batch_settled(self, ids)

    def _candles_roll_up(self, fill_ids: list[int]) -> None:
        """Merge the batch's fills into the market's candles, in this transaction (README "Candles")."""
        trades = (FillTrade(fill_id, *(row[TRADE_AT[name]] for name in TRADE_FIELDS))
                  for fill_id, row in zip(fill_ids, self.fills))
        sql.candles_upsert(self.market.pk, candles_of(trades))


def _orders_save(orders: list[Order], now) -> None:
    rows_update(Order, ORDER_FIELDS, [
        (o.pk, o.status, o.reason, o.size, o.filled_size, o.filled_quote, o.fees_paid, o.settled_quote, o.triggered_at,
         o.book_priority, now) for o in orders
    ])
