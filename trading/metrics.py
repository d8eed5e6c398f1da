"""Trading's metrics (``core.metrics`` explains the two kinds).

Counted where it happens, a few increments per request or batch and no query:
- ``brokerage_orders_accepted_total{market}`` and ``brokerage_orders_rejected_total{code}``: ``POST /orders``.
- ``brokerage_matcher_batch_orders{market}`` and ``brokerage_matcher_batch_duration_seconds{market}``: each
  matcher batch; ``brokerage_settlement_entries_total{market}``: ledger entries the batches posted (one per
  fill), so ``rate()`` of it is settlement entries per second; ``brokerage_matcher_lock_busy_total{market}``:
  wake-ups that found another batch running.

Read at scrape time (one aggregate over the partial index of ``new`` orders):
- ``brokerage_orders_new{market}``: orders waiting for the matcher; ``brokerage_matcher_lag_seconds{market}``:
  age of the oldest of them (0 when none).
"""

from __future__ import annotations

from django.db.models import Count, Min, Q
from django.utils import timezone

from core.metrics import counter, gauge_family, histogram
from trading.models import Market, OrderStatus

BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)

ORDERS_ACCEPTED = counter("orders_accepted_total", "Orders accepted by POST /orders, per market.", ["market"])
ORDERS_REJECTED = counter("orders_rejected_total", "Orders refused by POST /orders, per error code.", ["code"])
BATCH_ORDERS = histogram("matcher_batch_orders", "Orders per matcher batch.", ["market"], buckets=BATCH_BUCKETS)
BATCH_SECONDS = histogram("matcher_batch_duration_seconds", "Duration of a matcher batch, commit included.",
                          ["market"])
SETTLEMENT_ENTRIES = counter("settlement_entries_total", "Ledger entries posted by matcher batches (one per fill).",
                             ["market"])
LOCK_BUSY = counter("matcher_lock_busy_total", "Matcher wake-ups that found the market locked by another batch.",
                    ["market"])

_symbols: dict[int, str] = {}  # market id -> symbol, read once per process


def _symbol(market_id: int) -> str:
    symbol = _symbols.get(market_id)
    if symbol is None:
        symbol = Market.objects.filter(pk=market_id).values_list("symbol", flat=True).first() or str(market_id)
        _symbols[market_id] = symbol
    return symbol


def order_accepted(*, symbol: str) -> None:
    ORDERS_ACCEPTED.labels(symbol).inc()


def order_rejected(*, code: str | None) -> None:
    """``code``: what the API answered (``core.api.errors.error_code``); None for an unexpected error (a 500)."""
    if code is not None:
        ORDERS_REJECTED.labels(code).inc()


def batch_observed(*, market_id: int, locked: bool, orders: int, fills: int, seconds: float) -> None:
    symbol = _symbol(market_id)
    if not locked:
        LOCK_BUSY.labels(symbol).inc()
        return
    if orders:
        BATCH_ORDERS.labels(symbol).observe(orders)
        BATCH_SECONDS.labels(symbol).observe(seconds)
    if fills:
        SETTLEMENT_ENTRIES.labels(symbol).inc(fills)


def matcher_backlog():
    """Scrape time: ``new`` orders per market and the age of the oldest."""
    waiting = gauge_family("orders_new", "Orders accepted and not yet matched, per market.", ["market"])
    lag = gauge_family("matcher_lag_seconds", "Age of the oldest order not yet matched (0 if none), per market.",
                       ["market"])
    new = Q(orders__status=OrderStatus.NEW)
    now = timezone.now()
    rows = Market.objects.annotate(n=Count("orders", filter=new), oldest=Min("orders__created_at", filter=new))
    for symbol, n, oldest in rows.values_list("symbol", "n", "oldest").order_by("symbol"):
        waiting.add_metric([symbol], n)
        lag.add_metric([symbol], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
    return [waiting, lag]
