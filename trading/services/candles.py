"""Rebuilding a market's candles from its fills (``manage.py candles_backfill``): for fills made before the matcher
rolled them up, or to check and repair the rollup. The matcher keeps candles current on its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.db.models import Max, Min

from ledger.dates import day_start, utc_date
from trading import sql
from trading.candles import DAY
from trading.models import Fill, Market


@dataclass(frozen=True)
class BackfillSummary:
    market: str
    days: int = 0
    candles: int = 0


def candles_backfill(*, market: Market, since: date | None = None, until: date | None = None) -> BackfillSummary:
    """Recompute the market's candles from its fills, one UTC day per transaction, from ``since`` (default: the
    day of its first fill) to ``until`` inclusive (default: the day of its last). Each day's candles are deleted
    and rebuilt under the market's lock, so the matcher waits for at most a day's rebuild and never rolls up a
    fill into a candle being rebuilt. Idempotent: a second run writes the same candles; an interrupted run
    leaves every day either as it was or rebuilt."""
    span = Fill.objects.filter(market=market).aggregate(first=Min("created_at"), last=Max("created_at"))
    if span["first"] is None and since is None:
        return BackfillSummary(market.symbol)
    first = day_start(since) if since else day_start(utc_date(span["first"]))
    last = day_start(until) if until else day_start(utc_date(span["last"])) if span["last"] else first
    days = candles = 0
    day = first
    while day <= last:
        with transaction.atomic():
            sql.market_lock(market.pk, wait=True)
            written = sql.candles_rebuild(market.pk, day, day + DAY)
        days, candles, day = days + 1, candles + written, day + DAY
    return BackfillSummary(market.symbol, days=days, candles=candles)
