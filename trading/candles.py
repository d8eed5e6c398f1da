"""Candles (OHLCV) of a market's fills: pure arithmetic, shared by the matcher's rollup and the backfill.

A candle covers ``[start, start + granularity)`` with ``start`` a multiple of the granularity since the Unix epoch
(so daily candles start at 00:00 UTC, 6-hour ones at 00, 06, 12 and 18 UTC). Its open is the price of the
bucket's earliest fill and its close the price of its latest, by fill id (the matcher numbers fills in the order
it made them); volume is the base traded, quote volume the exact notional, price x size.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

GRANULARITIES = (60, 300, 900, 3600, 21600, 86400)  # seconds; each divides a day, so a day holds whole buckets
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def bucket_start(at: datetime, granularity: int) -> datetime:
    """The start of the ``granularity``-second bucket holding ``at`` (exact: integer arithmetic on timedeltas)."""
    step = timedelta(seconds=granularity)
    return EPOCH + (at - EPOCH) // step * step


class FillTrade(NamedTuple):
    """What a candle needs of a fill."""

    id: int
    price: Decimal
    size: Decimal
    quote_amount: Decimal
    created_at: datetime


class CandleRow(NamedTuple):
    """One candle's values, or one batch's contribution to a candle (merged with ``candle_merge``). A tuple: the
    rollup sends its rows' columns as arrays, on the matcher's hot path."""

    granularity: int
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int
    first_fill_id: int
    last_fill_id: int


def candle_merge(a: CandleRow, b: CandleRow) -> CandleRow:
    """Two parts of one bucket as one candle, whichever came first: what the rollup's upsert does in SQL."""
    first, last = (a, b) if a.first_fill_id < b.first_fill_id else (b, a)
    latest = a if a.last_fill_id > b.last_fill_id else b
    return CandleRow(
        granularity=a.granularity, start=a.start, open=first.open, high=max(a.high, b.high), low=min(a.low, b.low),
        close=latest.close, volume=a.volume + b.volume, quote_volume=a.quote_volume + b.quote_volume,
        trade_count=a.trade_count + b.trade_count, first_fill_id=first.first_fill_id,
        last_fill_id=latest.last_fill_id,
    )


def candles_of(fills: Iterable[FillTrade], granularities: Iterable[int] = GRANULARITIES) -> list[CandleRow]:
    """The candles of ``fills`` at each granularity, one row per (granularity, bucket), by granularity then start.

    Fills of one instant are summed once and then merged into each granularity's bucket: a matcher batch's fills
    all share one time, so a batch costs one pass over its fills and six rows."""
    instants: dict[datetime, list[FillTrade]] = {}
    for fill in sorted(fills, key=lambda f: f.id):
        instants.setdefault(fill.created_at, []).append(fill)
    parts = []
    for at, group in instants.items():
        prices = [f.price for f in group]
        parts.append((at, group[0].price, max(prices), min(prices), group[-1].price, sum(f.size for f in group),
                      sum(f.quote_amount for f in group), len(group), group[0].id, group[-1].id))
    rows: dict[tuple[int, datetime], CandleRow] = {}
    for granularity in granularities:
        for at, *values in parts:
            key = (granularity, bucket_start(at, granularity))
            row = CandleRow(granularity, key[1], *values)
            rows[key] = candle_merge(rows[key], row) if key in rows else row
    return sorted(rows.values(), key=lambda r: (r.granularity, r.start))
