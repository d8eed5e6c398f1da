"""Reads of the trading domain: a client's orders and fills, and market data (book, trades, ticker).

Market data is read from the database, not from a matcher's memory: resting orders are the book of record,
and the API processes hold no book of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import ClientAccount
from trading.models import FeeSchedule, Fill, Market, Order, OrderStatus, Side

RESTING = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
ZERO = Decimal(0)


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
        Order.objects.filter(market=market, side=side, status__in=RESTING)
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
    volume_24h: Decimal
    quote_volume_24h: Decimal


def ticker(*, market: Market) -> Ticker:
    last = Fill.objects.filter(market=market).order_by("-id").only("price", "size", "created_at").first()
    bids, asks = book_levels(market=market, side=Side.BUY, depth=1), book_levels(market=market, side=Side.SELL, depth=1)
    volume = Fill.objects.filter(market=market, created_at__gte=timezone.now() - timedelta(hours=24)).aggregate(
        base=Sum("size"), quote=Sum("quote_amount")
    )
    return Ticker(
        market=market,
        last_price=last.price if last else None,
        last_size=last.size if last else None,
        last_at=last.created_at if last else None,
        best_bid=bids[0][0] if bids else None,
        best_ask=asks[0][0] if asks else None,
        volume_24h=volume["base"] or ZERO,
        quote_volume_24h=volume["quote"] or ZERO,
    )


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
