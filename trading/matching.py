"""Persisting one matcher batch: the engine's outcomes become fills, ledger entries, hold changes and order
updates, written with a handful of bulk statements inside the caller's transaction.

Queries per batch, whatever its size: makers not in the batch (1), client ledger accounts (1), the fee
account (1), the ledger batch (a few: entries, one balance lock, postings, holds), fills (1), orders (1),
plus one per hold that still has something to give back when its order ends.
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from ledger import services as ledger
from ledger.models import HoldStatus, LedgerAccount, Purpose
from trading import engine
from trading.models import Fill, Market, Order, OrderStatus, Side
from trading.settlement import FillAmounts, fill_apply

ORDER_FIELDS = ["status", "reason", "filled_size", "filled_quote", "fees_paid", "settled_quote", "updated_at"]


class BatchSettlement:
    def __init__(self, *, market: Market, takers: list[Order]):
        self.market = market
        self.orders: dict[int, Order] = {o.pk: o for o in takers}
        self.changed: dict[int, Order] = {}
        self.ended: dict[int, Order] = {}
        self.fills: list[Fill] = []
        self.specs: list[ledger.EntrySpec] = []
        self.now = timezone.now()
        self.ledger_accounts: dict[int, LedgerAccount] = {}
        self.fees_account: LedgerAccount | None = None

    def settle(self, outcomes: list[engine.Outcome]) -> int:
        """Apply the outcomes in the order they happened and write everything. Returns the number of fills."""
        self._makers_load(outcomes)
        account_ids = {o.account_id for o in self.orders.values()}
        self.ledger_accounts = {a.client_id: a for a in LedgerAccount.objects.filter(client_id__in=account_ids)}
        self.fees_account = ledger.firm_account(Purpose.FEES)
        for outcome in outcomes:
            self._outcome_apply(outcome)
        self._write()
        return len(self.fills)

    def _makers_load(self, outcomes: list[engine.Outcome]) -> None:
        ids = {m.maker_id for o in outcomes for m in o.matches} | {c.order_id for o in outcomes for c in o.maker_cancels}
        missing = ids - self.orders.keys()
        if missing:
            self.orders.update({o.pk: o for o in Order.objects.filter(pk__in=missing).select_related("hold")})

    def _outcome_apply(self, outcome: engine.Outcome) -> None:
        for cancel in outcome.maker_cancels:
            self._end(self.orders[cancel.order_id], OrderStatus.CANCELLED, cancel.reason)
        for match in outcome.matches:
            self._fill(match)
        taker = self.orders[outcome.order_id]
        if outcome.status in (engine.OPEN, engine.PARTIALLY_FILLED):
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

    def _fill_row(self, match: engine.Match, maker: Order, taker: Order, buyer: Order, amounts: FillAmounts) -> Fill:
        maker_fee, taker_fee = (
            (amounts.buyer_fee, amounts.seller_fee) if buyer is maker else (amounts.seller_fee, amounts.buyer_fee)
        )
        return Fill(
            market=self.market, maker_order=maker, taker_order=taker, maker_account_id=maker.account_id,
            taker_account_id=taker.account_id, price=match.price, size=match.size, quote_amount=amounts.notional,
            maker_fee=maker_fee, taker_fee=taker_fee, buyer_quote=amounts.buyer_quote,
            seller_quote=amounts.seller_quote, aggressor_side=match.aggressor_side, created_at=self.now,
        )

    def _write(self) -> None:
        self._balances_lock()
        if self.specs:
            entries = ledger.entries_post(specs=self.specs)
            for fill, entry in zip(self.fills, entries):
                fill.entry = entry
            Fill.objects.bulk_create(self.fills)
        # Captures above already reduced the hold objects in memory; what is left goes back to the clients.
        ledger.holds_release(holds=_released_holds(self.ended))
        _orders_save(list(self.changed.values()), self.now)

    def _balances_lock(self) -> None:
        """Every balance row the batch will touch (fills and hold releases), locked in one sorted statement
        before any other: two batches of markets that share a client cannot wait for each other in a cycle."""
        by_id = {a.pk: a for a in self.ledger_accounts.values()}
        keys = {(leg.account.pk, leg.asset): leg.account for spec in self.specs for leg in spec.legs}
        for order in self.ended.values():
            if order.hold is not None:
                keys[(order.hold.account_id, order.hold.asset_id)] = by_id[order.hold.account_id]
        if keys:
            ledger.balances_lock(keys=[(account, asset) for (_, asset), account in keys.items()])


def _released_holds(ended: dict[int, Order]) -> list:
    return [
        o.hold for o in ended.values()
        if o.hold is not None and o.hold.status == HoldStatus.ACTIVE and o.hold.remaining > 0
    ]


def _orders_save(orders: list[Order], now) -> None:
    """One UPDATE for the batch's orders (Django's bulk_update builds a slow CASE expression per field)."""
    for order in orders:
        order.updated_at = now
    if connection.vendor != "postgresql":
        Order.objects.bulk_update(orders, ORDER_FIELDS)
        return
    row = "(%s::bigint, %s::varchar, %s::varchar, %s::numeric, %s::numeric, %s::numeric, %s::numeric)"
    params = [now]
    for o in orders:
        params += [o.pk, o.status, o.reason, o.filled_size, o.filled_quote, o.fees_paid, o.settled_quote]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE trading_order AS o SET status = v.status, reason = v.reason, filled_size = v.filled_size, "
            "filled_quote = v.filled_quote, fees_paid = v.fees_paid, settled_quote = v.settled_quote, updated_at = %s "
            f"FROM (VALUES {', '.join([row] * len(orders))}) "
            "AS v(id, status, reason, filled_size, filled_quote, fees_paid, settled_quote) WHERE o.id = v.id",
            params,
        )
