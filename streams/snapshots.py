"""What a subscription reads from the database (sync: called through ``database_sync_to_async``)."""

from __future__ import annotations

from django.conf import settings

from streams.books import LevelBook
from streams.streamer import MarketStream, level2_snapshot
from trading import selectors as trading
from trading.models import Market


def markets_by_symbol(symbols: list[str]) -> dict[str, int]:
    return dict(Market.objects.filter(symbol__in=symbols).values_list("symbol", "id"))


def level2_snapshot_read(market_id: int) -> dict:
    """The market's book at one sequence, every level (up to ``STREAMS_LEVEL2_DEPTH`` a side): the same
    book, sequence and strings as ``GET /markets/<symbol>/book/`` at that sequence."""
    market = Market.objects.select_related("base", "quote").get(pk=market_id)
    sequence, rows = trading.sequenced_read(market=market, read=lambda: trading.resting_orders(market=market))
    return level2_snapshot(MarketStream(market, LevelBook.from_orders(sequence, rows)), settings.STREAMS_LEVEL2_DEPTH)
