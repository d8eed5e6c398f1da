"""Reads of the trading domain: a client's orders and fills, and market data (book, trades, ticker).

Market data is read from the database, not from a matcher's memory: resting orders are the book of record,
and the API processes hold no book of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum

from accounts.models import ClientAccount
from trading import clock, sql
from trading.candles import CandleRow, FillTrade, bucket_start, candle_merge, candles_of
from trading.models import RESTING_STATUSES, Candle, FeeSchedule, Fill, Market, Order, Side

ZERO = Decimal(0)
BOOK_READ_TRIES = 5


def markets_list() -> QuerySet[Market]:
    return Market.objects.select_related("base", "quote").order_by("symbol")


# Markets with their assets by symbol, as this process last read them (only markets that exist: one entry per
# market at most). Entries are replaced, never changed in place, so requests may share them across threads.
_markets_read: dict[str, Market] = {}


def market_by_symbol(symbol: str) -> Market | None:
    """The market with this symbol and its assets, without a query once this process has read it.

    It may be stale: the market may have been edited, halted or reopened since. Only for callers that check
    it is current where it matters, as ``services.order_place`` does inside its transaction (it reloads the
    market with ``market_reloaded`` when it changed).
    """
    return _markets_read.get(symbol) or market_reloaded(symbol)


def market_reloaded(symbol: str) -> Market | None:
    """The market with this symbol and its assets, read now (and remembered for ``market_by_symbol``)."""
    market = Market.objects.select_related("base", "quote").filter(symbol=symbol).first()
    if market is None:
        _markets_read.pop(symbol, None)
    else:
        _markets_read[symbol] = market
    return market


def orders_of(*, account: ClientAccount) -> QuerySet[Order]:
    return Order.objects.filter(account=account).select_related("market__base", "market__quote")


def fills_of(*, account: ClientAccount) -> QuerySet[Fill]:
    return Fill.objects.filter(Q(maker_account=account) | Q(taker_account=account)).select_related(
        "market__base", "market__quote"
    )


def fills_of_order(*, order: Order) -> QuerySet[Fill]:
    return Fill.objects.filter(Q(maker_order=order) | Q(taker_order=order)).select_related(
        "market__base", "market__quote"
    )


def book_levels(*, market: Market, side: str, depth: int) -> list[tuple[Decimal, Decimal, int]]:
    """The best ``depth`` price levels of one side: (price, open size, number of orders)."""
    rows = (
        Order.objects.filter(market=market, side=side, status__in=RESTING_STATUSES)
        .values("price")
        .annotate(size=Sum(F("size") - F("filled_size")), orders=Count("id"))
        .order_by("-price" if side == Side.BUY else "price")[:depth]
    )
    return [(r["price"], r["size"], r["orders"]) for r in rows]


def book_snapshot(*, market: Market, depth: int) -> dict:
    return {
        "bids": book_levels(market=market, side=Side.BUY, depth=depth),
        "asks": book_levels(market=market, side=Side.SELL, depth=depth),
    }


def book_sequence(*, market_id: int) -> int:
    match_seq, cancel_seq = Market.objects.filter(pk=market_id).values_list("match_seq", "cancel_seq").get()
    return match_seq + cancel_seq


def sequenced_read(*, market: Market, read):
    """``(sequence, read())`` where ``read()`` saw exactly the book of ``sequence`` (``Market.book_sequence``).

    Every change of the resting book commits together with a bump of the sequence, so a read between two
    equal readings of the sequence saw no change commit. Optimistic, so readers never wait for the matcher;
    after a few busy tries it reads under the market lock that every book writer holds."""
    for _ in range(BOOK_READ_TRIES):
        before = book_sequence(market_id=market.pk)
        result = read()
        if book_sequence(market_id=market.pk) == before:
            return before, result
    with transaction.atomic():
        sql.market_lock(market.pk, wait=True)
        return book_sequence(market_id=market.pk), read()


def resting_orders(*, market: Market) -> list[tuple[int, str, Decimal, Decimal]]:
    """The book of record, order by order: (id, side, price, size still resting)."""
    return [(pk, side, price, size - filled) for pk, side, price, size, filled in
            Order.objects.filter(market=market, status__in=RESTING_STATUSES).order_by("id")
            .values_list("id", "side", "price", "size", "filled_size")]


def trades_recent(*, market: Market, limit: int) -> list[Fill]:
    fills = list(Fill.objects.filter(market=market).order_by("-id")[:limit])
    for fill in fills:
        fill.market = market  # one market for all: no query per row
    return fills


@dataclass(frozen=True)
class Ticker:
    market: Market
    last_price: Decimal | None
    last_size: Decimal | None
    last_at: datetime | None
    best_bid: Decimal | None
    best_ask: Decimal | None
    open_24h: Decimal | None
    high_24h: Decimal | None
    low_24h: Decimal | None
    volume_24h: Decimal
    quote_volume_24h: Decimal
    trades_24h: int


def ticker(*, market: Market) -> Ticker:
    last = Fill.objects.filter(market=market).order_by("-id").only("price", "size", "created_at").first()
    bids, asks = book_levels(market=market, side=Side.BUY, depth=1), book_levels(market=market, side=Side.SELL, depth=1)
    day = trades_since(market=market, since=clock.now() - timedelta(hours=24))
    return Ticker(
        market=market,
        last_price=last.price if last else None,
        last_size=last.size if last else None,
        last_at=last.created_at if last else None,
        best_bid=bids[0][0] if bids else None,
        best_ask=asks[0][0] if asks else None,
        open_24h=day.open if day else None,
        high_24h=day.high if day else None,
        low_24h=day.low if day else None,
        volume_24h=day.volume if day else ZERO,
        quote_volume_24h=day.quote_volume if day else ZERO,
        trades_24h=day.trade_count if day else 0,
    )


def trades_since(*, market: Market, since: datetime) -> CandleRow | None:
    """One candle of every fill of the market from ``since`` on (None without one), exactly, without reading
    more than a minute of fills: the fills before the first whole minute, then the one-minute candles."""
    edge = bucket_start(since, 60)
    if edge < since:
        edge += timedelta(seconds=60)
    fills = Fill.objects.filter(market=market, created_at__gte=since, created_at__lt=edge).values_list(
        "id", "price", "size", "quote_amount", "created_at")
    parts = candles_of((FillTrade(*values) for values in fills), granularities=(86400,))
    minutes = Candle.objects.filter(market=market, granularity=60, start__gte=edge)
    summed = minutes.aggregate(high=Max("high"), low=Min("low"), volume=Sum("volume"), quote_volume=Sum("quote_volume"),
                               trade_count=Sum("trade_count"))
    if summed["trade_count"]:
        first, last = minutes.order_by("first_fill_id").first(), minutes.order_by("-last_fill_id").first()
        parts.append(CandleRow(86400, edge, first.open, summed["high"], summed["low"], last.close, summed["volume"],
                               summed["quote_volume"], summed["trade_count"], first.first_fill_id, last.last_fill_id))
    if not parts:
        return None
    day = parts[0]
    for part in parts[1:]:
        day = candle_merge(day, part)
    return day


def candles_list(*, market: Market, granularity: int, start: datetime | None = None,
                 end: datetime | None = None) -> QuerySet[Candle]:
    """The market's candles of one granularity: those whose bucket holds ``start`` or begins after it, and
    begins before ``end``. Buckets without a trade have no candle."""
    candles = Candle.objects.filter(market=market, granularity=granularity)
    if start is not None:
        candles = candles.filter(start__gte=bucket_start(start, granularity))
    if end is not None:
        candles = candles.filter(start__lt=end)
    return candles
# --- the fees a client pays (GET /fees/) ------------------------------------------------------------------

FEE_VOLUME_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class MarketFees:
    market: Market
    maker_fee_rate: Decimal
    taker_fee_rate: Decimal


def fee_rates_of(*, account: ClientAccount) -> list[MarketFees]:
    """The maker and taker rates the account's next order would get in each market: its tier's schedule for
    the market, else its tier's schedule for all markets, else the market's own rates (as placing decides)."""
    schedules = {market_id: (maker, taker) for market_id, maker, taker in FeeSchedule.objects.filter(
        tier=account.tier).values_list("market_id", "maker_fee_rate", "taker_fee_rate")}
    return [
        MarketFees(market, *(schedules.get(market.pk) or schedules.get(None)
                             or (market.maker_fee_rate, market.taker_fee_rate)))
        for market in markets_list()
    ]


def volume_of(*, account: ClientAccount, since: datetime) -> dict[str, Decimal]:
    """The notional the account traded (as maker or taker) since ``since``, per quote asset."""
    rows = (
        Fill.objects.filter(Q(maker_account=account) | Q(taker_account=account), created_at__gte=since)
        .values("market__quote_id").annotate(volume=Sum("quote_amount")).order_by("market__quote_id")
    )
    return {row["market__quote_id"]: row["volume"] for row in rows}
