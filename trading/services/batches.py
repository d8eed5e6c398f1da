"""Placing a batch of orders (``POST /api/v1/orders/batch/``) with a group commit: one transaction, and one
commit, for the whole batch, each order placed by ``order_place`` in it.

A refused order has written nothing (``trading.sql.placement_write`` writes all or nothing), so the others stand
without a savepoint per order. Orders later in a batch see the earlier ones (their holds, open-order counts and
notional) because they share the transaction. Anything that is not a refusal of one order (a ``DomainError``),
e.g. a database error, propagates and rolls the whole batch back.

The batch locks the client account's row, then the balance rows its orders may reserve from (in id order), before
its first order, and keeps them until its commit: one account's batches and placements wait for each other, and a
matcher batch settling the account's fills waits for the batch (never the deadlock of each waiting for the other).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from accounts.models import ClientAccount
from core.db import on_commit_coalesced, row_locked
from core.exceptions import Code as GenericCode
from core.exceptions import DomainError
from ledger import services as ledger
from trading.errors import InvalidOrder
from trading.models import Order
from trading.services.placement import order_place

# The most orders one batch may carry: it bounds how long the batch holds the account's row and balance locks.
ORDER_BATCH_MAX = 50


@transaction.atomic
def orders_place_batch(*, account: ClientAccount, orders: Sequence[dict], acting_user) -> list[Order | DomainError]:
    """Place ``orders`` (each the keyword arguments of ``order_place`` but ``account`` and ``acting_user``) in
    this order, in one transaction. Returns, per order, the order placed (or replayed: ``client_order_id`` keeps
    its idempotency, within the batch too) or the ``DomainError`` that refused it."""
    if len(orders) > ORDER_BATCH_MAX:
        raise InvalidOrder(f"A batch has at most {ORDER_BATCH_MAX} orders.", code=GenericCode.MAX_LENGTH,
                           field="orders")
    if not orders:
        return []
    _balances_locked(account, orders)
    with on_commit_coalesced():  # one matcher wake-up per market and one for the event sequencer
        return [_order_placed_or_refused(account, order, acting_user) for order in orders]


def _balances_locked(account: ClientAccount, orders: Sequence[dict]) -> None:
    """Lock, before the first order, the balance rows the batch's orders may reserve from (the base and quote of
    their markets), in id order: each placement reserves its row last, but the batch keeps every row it reserved
    locked until its commit, and taking them in the orders' order (a sell then a buy: the base, then the quote)
    could deadlock with a matcher batch settling this client's fills, which locks both in id order. The account's
    row first, as placement and the kill switch take it before any balance row."""
    row_locked(account)
    ledger.balances_lock_for_holds(account=account.ledger_account, assets={
        asset for order in orders for asset in (order["market"].base_id, order["market"].quote_id)})


def _order_placed_or_refused(account: ClientAccount, order: dict, acting_user) -> Order | DomainError:
    # No savepoint per order: a refused placement has written nothing, and the account's row, locked by the batch
    # before its first order, keeps any other placement from racing an order's client order id.
    try:
        return order_place(account=account, acting_user=acting_user, savepoint=False, **order)
    except DomainError as refused:
        return refused
