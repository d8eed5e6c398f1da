"""The invariants every reliability test checks: money is never created, lost, double-counted or left stuck.

``assert_books_consistent()`` collects every violation it finds and fails with all of them at once. It reuses
the ledger's own checks (``balance_drift``, ``trial_balance``, ``reconciliation_run``) and adds what only the
trading and funding records can say: that holds equal what open orders and pending withdrawals may still spend,
that every fill was settled by exactly one entry moving exactly its amounts, and that clients plus the firm's
fee revenue hold exactly what was deposited less what was withdrawn.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal, localcontext

from accounts.models import OPEN_FUNDING_STATUSES, FundingStatus, Withdrawal
from compliance.reconciliation import reconciliation_run
from ledger.models import Balance, Hold, HoldStatus, JournalEntry, LedgerAccount, Posting, Purpose
from ledger.money import round_up
from ledger.selectors import balance_drift, trial_balance
from trading.engine import EXACT
from trading.models import OPEN_STATUSES, Fill, Order, OrderStatus, OrderType, Side

ZERO = Decimal(0)


def assert_books_consistent(*, deposited: Mapping[str, Decimal] | None = None, matched: bool = False,
                            reconcile: bool = True) -> None:
    """Fail with every broken invariant. ``deposited``: what the test paid in per asset (checked against what
    clients and fee revenue hold after completed withdrawals); ``matched``: no ``new`` order may be left;
    ``reconcile``: also run the full reconciliation (it records a run, so it is the slowest part)."""
    problems = [
        *_negative_balances(),
        *(f"balance drift: {d}" for d in balance_drift()),
        *(f"trial balance: {asset} postings sum to {total}" for asset, total in trial_balance().items() if total),
        *_holds_vs_commitments(),
        *_fills_settled_once(),
        *_orders_vs_fills(),
        *_conservation(deposited),
    ]
    if matched:
        problems += [f"order #{pk} is still new" for pk in Order.objects.filter(status=OrderStatus.NEW)
                     .values_list("pk", flat=True)]
    assert not problems, "books inconsistent:\n" + "\n".join(problems)
    if reconcile:
        run = reconciliation_run()
        assert run.ok, [b.detail for b in run.breaks.all()]


def _negative_balances() -> list[str]:
    problems = []
    for b in Balance.objects.select_related("account"):
        if b.held < 0 or (b.account.purpose == Purpose.CLIENT and (b.amount < 0 or b.amount - b.held < 0)):
            problems.append(f"{b.account.code} {b.asset_id}: amount {b.amount}, held {b.held}")
        if b.account.purpose == Purpose.FEES and b.amount < 0:
            problems.append(f"fee revenue {b.asset_id} is negative: {b.amount}")
    return problems


def _holds_vs_commitments() -> list[str]:
    """Every active hold is what an open order or pending withdrawal may still spend, to the unit; every closed
    order and finished withdrawal has given its hold up; ``Balance.held`` is the sum of those commitments."""
    problems: list[str] = []
    committed: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    commitments = 0
    for order in Order.objects.select_related("hold", "market__quote"):
        hold = order.hold
        if order.status not in OPEN_STATUSES:
            if hold is not None and hold.status == HoldStatus.ACTIVE:
                problems.append(f"order #{order.pk} is {order.status} but its hold {hold.key} is still active")
            continue
        if hold is None or hold.status != HoldStatus.ACTIVE:
            problems.append(f"order #{order.pk} is {order.status} without an active hold")
            continue
        expected = _order_commitment(order)
        if hold.remaining != expected:
            problems.append(f"order #{order.pk} ({order.side}, {order.status}): hold remaining {hold.remaining}, "
                            f"open commitment {expected}")
        if order.side == Side.BUY and order.type == OrderType.LIMIT and order.status != OrderStatus.NEW:
            worst = _limit_buy_worst_case(order)
            if hold.remaining < worst:
                problems.append(f"order #{order.pk}: hold remaining {hold.remaining} cannot pay the worst case "
                                f"{worst} of its open size")
        committed[(hold.account_id, hold.asset_id)] += hold.remaining
        commitments += 1
    for withdrawal in Withdrawal.objects.select_related("hold"):
        hold, status = withdrawal.hold, withdrawal.status
        expected_hold = {FundingStatus.COMPLETED: HoldStatus.CAPTURED}.get(
            status, HoldStatus.ACTIVE if status in OPEN_FUNDING_STATUSES else HoldStatus.RELEASED
        )
        if hold is None or hold.status != expected_hold or (
            expected_hold == HoldStatus.ACTIVE and hold.remaining != withdrawal.amount
        ):
            problems.append(f"withdrawal #{withdrawal.pk} of {withdrawal.amount} is {status}: hold {hold} should "
                            f"be {expected_hold}")
        elif expected_hold == HoldStatus.ACTIVE:
            committed[(hold.account_id, hold.asset_id)] += hold.remaining
            commitments += 1
    held = {(b.account_id, b.asset_id): b.held for b in Balance.objects.exclude(held=0)}
    for key in committed.keys() | held.keys():
        if held.get(key, ZERO) != committed.get(key, ZERO):
            problems.append(f"ledger account {key[0]} {key[1]}: held {held.get(key, ZERO)}, "
                            f"open commitments {committed.get(key, ZERO)}")
    active = Hold.objects.filter(status=HoldStatus.ACTIVE).count()
    if active != commitments:
        problems.append(f"{active} active holds for {commitments} open orders and pending withdrawals")
    return problems


def _order_commitment(order: Order) -> Decimal:
    """What an open order may still spend: a sell its unfilled base, a buy what its hold has not paid yet."""
    if order.side == Side.SELL:
        return order.size - order.filled_size
    return order.hold.amount - order.settled_quote


def _limit_buy_worst_case(order: Order) -> Decimal:
    """What the rest of a resting limit buy could still cost: its running total rounded up, less what it paid."""
    rate = order.maker_fee_rate if order.post_only else max(order.maker_fee_rate, order.taker_fee_rate)
    with localcontext(EXACT):
        exact_total = order.filled_quote + order.fees_paid + order.price * (order.size - order.filled_size) * (1 + rate)
    return round_up(exact_total, order.market.quote.precision) - order.settled_quote


def _fills_settled_once() -> list[str]:
    """One ``trade`` entry per fill, keyed by its maker and taker, moving exactly the fill's amounts."""
    problems: list[str] = []
    fills = list(Fill.objects.select_related("market", "maker_order", "entry"))
    trade_entries = JournalEntry.objects.filter(kind="trade").count()
    if trade_entries != len(fills):
        problems.append(f"{trade_entries} trade entries for {len(fills)} fills")
    pairs = [(f.maker_order_id, f.taker_order_id) for f in fills]
    if len(set(pairs)) != len(pairs):
        problems.append("the same maker and taker were filled twice")
    ledger_ids = dict(LedgerAccount.objects.filter(client__isnull=False).values_list("client_id", "pk"))
    fees = LedgerAccount.objects.get(purpose=Purpose.FEES).pk
    moved: dict[int, dict[tuple[int, str], Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for entry_id, account_id, asset, amount in Posting.objects.filter(entry__kind="trade").values_list(
        "entry_id", "account_id", "asset_id", "amount"
    ):
        moved[entry_id][(account_id, asset)] += amount
    for fill in fills:
        if fill.entry.key != f"fill:{fill.maker_order_id}:{fill.taker_order_id}":
            problems.append(f"fill #{fill.pk} is settled by entry {fill.entry.key}")
        maker_buys = fill.maker_order.side == Side.BUY
        buyer, seller = (fill.maker_account_id, fill.taker_account_id)[:: 1 if maker_buys else -1]
        base, quote = fill.market.base_id, fill.market.quote_id
        expected = defaultdict(lambda: ZERO)
        expected[(ledger_ids[seller], base)] += fill.size  # debits are positive
        expected[(ledger_ids[buyer], base)] -= fill.size
        expected[(ledger_ids[buyer], quote)] += fill.buyer_quote
        expected[(ledger_ids[seller], quote)] -= fill.seller_quote
        expected[(fees, quote)] -= fill.buyer_quote - fill.seller_quote
        expected = {k: v for k, v in expected.items() if v}
        actual = {k: v for k, v in moved[fill.entry_id].items() if v}
        if actual != expected:
            problems.append(f"fill #{fill.pk}: entry moved {actual}, the fill says {expected}")
    return problems


def _orders_vs_fills() -> list[str]:
    """Each order's running totals and status agree with its fills: nothing filled twice or left out."""
    problems: list[str] = []
    totals: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    for fill in Fill.objects.select_related("maker_order"):
        maker_buys = fill.maker_order.side == Side.BUY
        for order_id, buys in ((fill.maker_order_id, maker_buys), (fill.taker_order_id, not maker_buys)):
            size, notional, settled = totals[order_id]
            totals[order_id] = [size + fill.size, notional + fill.quote_amount,
                                settled + (fill.buyer_quote if buys else fill.seller_quote)]
    for order in Order.objects.all():
        size, notional, settled = totals.get(order.pk, [ZERO, ZERO, ZERO])
        if (order.filled_size, order.filled_quote, order.settled_quote) != (size, notional, settled):
            problems.append(f"order #{order.pk}: filled {order.filled_size}/{order.filled_quote}/"
                            f"{order.settled_quote}, its fills sum to {size}/{notional}/{settled}")
        if order.size is not None and order.filled_size > order.size:
            problems.append(f"order #{order.pk} overfilled: {order.filled_size} of {order.size}")
        if not _status_fits(order):
            problems.append(f"order #{order.pk} is {order.status} with {order.filled_size} of {order.size} filled")
    return problems


def _status_fits(order: Order) -> bool:
    filled, size = order.filled_size, order.size
    if order.status in (OrderStatus.NEW, OrderStatus.OPEN, OrderStatus.REJECTED, OrderStatus.PENDING_TRIGGER):
        return filled == 0
    if order.status == OrderStatus.PARTIALLY_FILLED:
        return 0 < filled < size
    if order.status == OrderStatus.FILLED:
        return filled > 0 and (size is None or filled == size)
    return size is None or filled < size  # cancelled or expired: whatever was filled stays filled


def _conservation(deposited: Mapping[str, Decimal] | None) -> list[str]:
    """Per asset, clients plus fee revenue plus the firm's principal inventory hold what custody holds, and
    custody moved only by funding (the firm's funding of its inventory counts as deposited)."""
    problems: list[str] = []
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for purpose, asset, amount in Balance.objects.values_list("account__purpose", "asset_id", "amount"):
        totals[asset][purpose] += amount
    withdrawn: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for asset, amount in Withdrawal.objects.filter(status=FundingStatus.COMPLETED).values_list("asset_id", "amount"):
        withdrawn[asset] += amount
    for asset in set(totals) | set(deposited or {}):
        owned = totals[asset][Purpose.CLIENT] + totals[asset][Purpose.FEES] + totals[asset][Purpose.INVENTORY]
        custody = totals[asset][Purpose.CUSTODY]
        if owned != custody:
            problems.append(f"{asset}: clients, fee revenue and inventory hold {owned}, custody {custody}")
        if deposited is not None and owned != deposited.get(asset, ZERO) - withdrawn[asset]:
            problems.append(f"{asset}: clients and fee revenue hold {owned}, but {deposited.get(asset, ZERO)} was "
                            f"deposited and {withdrawn[asset]} withdrawn")
    return problems
