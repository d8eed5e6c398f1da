"""A poisoned order never stalls a market (README "Security").

A matcher batch is one transaction; if an order's settlement cannot be written (a ledger refusal, a check
constraint, an overflow: ``SETTLEMENT_ERRORS``), the whole batch rolls back, and without this every later batch
of the market would fail the same way while unrelated orders wait. ``market_match`` then calls
``batch_isolate``, which redoes the batch in a new transaction under the market lock, in savepoints:

1. the batch's ``new`` orders are settled in chunks; a chunk that fails is rolled back to its savepoint and split
   in two, until the failure is one taker (a handful of savepoints per poisoned order, not one per order);
2. for that taker and the resting orders it met, which one is poisoned: an order that breaks what every order
   must satisfy (fee rates between 0 and ``MAX_FEE_RATE``) is; else a resting order is, when the taker settles
   fills against other resting orders once it is out of the book (each tried out in turn, rolled back each
   time); else the taker, the newest of them, is. A poisoned taker is rejected, a poisoned resting order
   cancelled, both with reason ``settlement_failed``, and the taker settles against the rest of the book;
3. everything else of the batch settles as it would have, in the same order, and commits.

Each isolated order gets its hold released, its event (``order.rejected`` or ``order.cancelled`` with
``hold.released``), an audit row (``order.reject`` or ``order.cancel``, with the error)
and an ERROR log line naming it: the alert for operations. The hot path is unchanged: a batch that succeeds never
comes here. A lost connection or a bug (any other exception) still rolls back and propagates as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.db.models import F

from audit.services import audit_record, audit_values
from core.exceptions import DomainError
from ledger import services as ledger
from trading import outbox, sql
from trading.books import book_for, book_forget, order_incoming
from trading.errors import Code
from trading.models import MAX_FEE_RATE, Market, Order, OrderStatus
from trading.services.settlement import BatchSettlement

logger = logging.getLogger(__name__)

# What one order's data can make a batch fail with (as opposed to a lost connection or a bug).
SETTLEMENT_ERRORS = (DomainError, IntegrityError, DataError, ArithmeticError)
SETTLEMENT_FAILED = str(Code.SETTLEMENT_FAILED)
MAX_PROBES = 50  # resting orders tried out of the book for one failing taker before the taker is blamed


class _Probe(Exception):
    """Raised inside a savepoint to roll back an attempt that succeeded (a probe)."""


@dataclass
class _Attempt:
    ok: bool
    fills: int = 0
    error: BaseException | None = None
    makers: list[int] = field(default_factory=list)  # resting orders the taker met, in the order it met them


def batch_isolate(*, market_id: int, wait: bool, error: BaseException):
    """Redo the market's batch, isolating the orders whose settlement cannot be written (module docstring).
    Returns the batch's ``MatchSummary``."""
    from trading.services.matcher import MatchSummary, batch_market

    logger.warning("Matcher batch of market %s failed (%s: %s); isolating the order that cannot be settled",
                   market_id, type(error).__name__, error)
    try:
        with transaction.atomic():
            market, no_batch = batch_market(market_id, wait=wait)
            if market is None:
                return no_batch
            batch_size = settings.MATCHER_BATCH_SIZE
            ids = list(Order.objects.filter(market=market, status=OrderStatus.NEW).order_by("id")
                       .values_list("id", flat=True)[:batch_size])
            run = _Isolation(market)
            run.chunk(ids)
            Market.objects.filter(pk=market.pk).update(match_seq=F("match_seq") + 1)
            market.refresh_from_db(fields=["match_seq", "cancel_seq"])
            # Several book changes in one transaction: streams reread the book (README "Streams").
            outbox.book_changed(market, market.book_sequence, [], reset=True)
            return MatchSummary(market_id, orders=len(ids), fills=run.fills, more=len(ids) == batch_size)
    finally:
        book_forget(market_id)  # rolled back to savepoints and probed: the next batch rebuilds the book


def _breaking_invariants(order_ids: list[int]) -> dict[int, str]:
    """The orders among ``order_ids`` that break what every order satisfies, with what they break."""
    broken = {}
    for order_id, maker, taker in Order.objects.filter(pk__in=order_ids).values_list(
            "id", "maker_fee_rate", "taker_fee_rate"):
        if not (0 <= maker <= MAX_FEE_RATE and 0 <= taker <= MAX_FEE_RATE):
            broken[order_id] = f"fee rates {maker}/{taker} outside 0..{MAX_FEE_RATE}"
    return broken


class _Isolation:
    def __init__(self, market: Market):
        self.market = market
        self.fills = 0
        self._outcomes = []

    def chunk(self, ids: list[int]) -> None:
        """Settle ``ids`` (taker ids, oldest first) in one savepoint, or split them until the failure is one."""
        if not ids:
            return
        attempt = self._attempt(ids)
        if attempt.ok:
            self.fills += attempt.fills
        elif len(ids) == 1:
            self._isolate(ids[0], attempt)
        else:
            middle = len(ids) // 2
            self.chunk(ids[:middle])
            self.chunk(ids[middle:])

    def _attempt(self, ids: list[int], *, without: tuple[int, ...] = (), keep: bool = True) -> _Attempt:
        """Match and settle ``ids`` in a savepoint, with the resting orders ``without`` out of the book; kept if
        it succeeds and ``keep``, else rolled back. ``fills`` counts the fills settled either way."""
        self._outcomes, fills = [], 0
        try:
            with transaction.atomic():
                fills = self._settle(ids, without)
                if not keep:
                    raise _Probe
        except _Probe:
            book_forget(self.market.pk)
            return _Attempt(ok=True, fills=fills)
        except SETTLEMENT_ERRORS as exc:
            book_forget(self.market.pk)
            makers = list(dict.fromkeys(
                [m.maker_id for o in self._outcomes for m in o.matches]
                + [c.order_id for o in self._outcomes for c in o.maker_cancels]
            ))
            return _Attempt(ok=False, error=exc, makers=makers)
        return _Attempt(ok=True, fills=fills)

    def _settle(self, ids: list[int], without: tuple[int, ...]) -> int:
        orders = list(Order.objects.filter(pk__in=ids, status=OrderStatus.NEW).select_related("hold").order_by("id"))
        cached = book_for(self.market)
        for order_id in without:
            cached.book.remove(order_id)
        for order in orders:
            self._outcomes.append(cached.book.submit(order_incoming(order)))
        return BatchSettlement(market=self.market, takers=orders).settle(self._outcomes)

    def _isolate(self, taker_id: int, failed: _Attempt) -> None:
        """One taker fails alone: find the poisoned order among it and the resting orders it met, end it, and
        settle the taker against the rest of the book unless it is the poisoned one."""
        poisoned: list[int] = []
        while True:
            broken = _breaking_invariants([taker_id, *failed.makers])
            culprits = [m for m in broken if m != taker_id and m not in poisoned]
            if taker_id in broken:
                poisoned += culprits
                self._reject(taker_id, f"{failed.error.__class__.__name__}: {failed.error}; {broken[taker_id]}")
                break
            culprits = culprits or self._poisoned_maker(taker_id, tuple(poisoned), failed.makers)
            if not culprits:
                self._reject(taker_id, failed.error)
                break
            poisoned += culprits
            failed = self._attempt([taker_id], without=tuple(poisoned))
            if failed.ok:
                self.fills += failed.fills
                break
        for maker_id in poisoned:
            self._reject(maker_id, f"its settlement with order {taker_id} cannot be written")

    def _poisoned_maker(self, taker_id: int, excluded: tuple[int, ...], met: list[int]) -> list[int]:
        """Take the resting orders the taker met out of the book one more at a time: the one whose removal lets
        the taker settle fills against other resting orders is poisoned. Empty: none is shown to be."""
        removed: list[int] = []
        candidates = [m for m in met if m not in excluded]
        while candidates and len(removed) < MAX_PROBES:
            removed.append(candidates.pop(0))
            probe = self._attempt([taker_id], without=(*excluded, *removed), keep=False)
            if probe.ok and probe.fills:
                return [removed[-1]]
            if probe.ok:
                return []  # nothing else to meet: no evidence against the resting orders
            candidates += [m for m in probe.makers if m not in excluded and m not in removed and m not in candidates]
        return []

    def _reject(self, order_id: int, error) -> None:
        """End the order with reason ``settlement_failed`` (rejected if it was new, cancelled if it rested),
        release its hold, audit it and log it at ERROR. If even that cannot be written, the order is marked
        without releasing its hold (reconciliation reports the hold), so the market still moves on."""
        detail = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        try:
            with transaction.atomic():
                order = self._end(order_id, detail, release=True)
        except SETTLEMENT_ERRORS as exc:
            logger.critical("Matcher: the hold of order %s could not be released (%s); left for reconciliation",
                            order_id, exc)
            order = self._end(order_id, f"{detail}; hold not released: {exc}", release=False)
        logger.error("Matcher: order %s of market %s (account %s) %s with reason %s: %s", order.pk,
                     self.market.symbol, order.account_id, order.status, SETTLEMENT_FAILED, detail)

    def _end(self, order_id: int, detail: str, *, release: bool) -> Order:
        order = Order.objects.select_for_update(of=("self",), no_key=True).select_related("hold").get(pk=order_id)
        before = audit_values(order, ["status", "reason"])
        resting = order.status != OrderStatus.NEW
        if release and order.hold is not None:
            ledger.holds_release(holds=[order.hold])
        if resting:
            order.cancel_seq = sql.cancel_seq_next(self.market.pk)
        order.status = OrderStatus.CANCELLED if resting else OrderStatus.REJECTED
        order.reason = SETTLEMENT_FAILED
        order.save(update_fields=["status", "reason", "cancel_seq", "updated_at"])
        audit_record(acting_user=None, action="order.cancel" if resting else "order.reject", obj=order,
                     account=order.account, before=before,
                     after={**audit_values(order, ["status", "reason", "filled_size"]), "error": detail[:500]})
        outbox.orders_ended([order])
        return order
