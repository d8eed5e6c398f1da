"""Every hand-written statement of trading, the PostgreSQL one and its portable twin side by side.

Each statement has three doors: ``<name>_postgresql`` and ``<name>_portable``, callable explicitly (the parity
tests run both against the same rows), and ``<name>``, which picks one by the connection's vendor. This is the
only module of trading that asks for the vendor. The portable twins are plain ORM code, for the embedded
SQLite default; they also run on PostgreSQL, which is how the parity tests cover them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import F, Q

from accounts.models import AssetLimit, ClientAccount
from trading.candles import GRANULARITIES, CandleRow, FillTrade, candle_merge, candles_of
from trading.models import Candle, FeeSchedule, Fill, Market, Order

LOCK_NAMESPACE = 0x7472  # first key of the two-key advisory lock: "tr"(ading); the second is the market id


def _on_postgresql() -> bool:
    return connection.vendor == "postgresql"


# --- order placement's reads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacementReads:
    market_version: tuple | None  # the market's (id, status, updated_at) now; None if there is no such market
    existing_order_id: int | None
    max_order_sizes: dict[str, Decimal]  # asset -> this account's maximum order size, where it has one
    fee_schedules: dict[int | None, tuple[Decimal, Decimal]]  # market id (None: all markets) -> (maker, taker)


def placement_reads(account: ClientAccount, market: Market, client_order_id: str) -> PlacementReads:
    """What placing needs from the database, in one round trip: the market's current version (its status is
    checked fresh in the transaction), an order already stored under the client order id, the account's order
    size limits in the market's assets, and its tier's fee schedules."""
    if _on_postgresql():
        return placement_reads_postgresql(account, market, client_order_id)
    return placement_reads_portable(account, market, client_order_id)


def placement_reads_postgresql(account: ClientAccount, market: Market, client_order_id: str) -> PlacementReads:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'market', id, status, NULL::numeric, NULL::numeric, updated_at FROM trading_market"
            " WHERE symbol = %s"
            " UNION ALL"
            " SELECT 'order', id, NULL, NULL, NULL, NULL FROM trading_order"
            " WHERE account_id = %s AND client_order_id = %s"
            " UNION ALL"
            " SELECT 'limit', NULL, asset_id, max_order_size, NULL, NULL FROM accounts_assetlimit"
            " WHERE account_id = %s AND asset_id IN (%s, %s) AND max_order_size IS NOT NULL"
            " UNION ALL"
            " SELECT 'fees', market_id, NULL, maker_fee_rate, taker_fee_rate, NULL FROM trading_feeschedule"
            " WHERE tier = %s AND (market_id = %s OR market_id IS NULL)",
            [market.symbol, account.pk, client_order_id, account.pk, market.base_id, market.quote_id, account.tier,
             market.pk],
        )
        rows = cursor.fetchall()
    return PlacementReads(
        market_version=next(((id_, status, at) for kind, id_, status, _, _, at in rows if kind == "market"), None),
        existing_order_id=next((id_ for kind, id_, *_ in rows if kind == "order"), None),
        max_order_sizes={asset: limit for kind, _, asset, limit, *_ in rows if kind == "limit"},
        fee_schedules={market_id: (maker, taker) for kind, market_id, _, maker, taker, _ in rows if kind == "fees"},
    )


def placement_reads_portable(account: ClientAccount, market: Market, client_order_id: str) -> PlacementReads:
    """The same reads as four ORM queries (the ``UNION ALL`` above relies on PostgreSQL's casts)."""
    limits = AssetLimit.objects.filter(account=account, asset_id__in=[market.base_id, market.quote_id],
                                       max_order_size__isnull=False)
    schedules = FeeSchedule.objects.filter(Q(market=market) | Q(market__isnull=True), tier=account.tier)
    return PlacementReads(
        market_version=Market.objects.filter(symbol=market.symbol).values_list("id", "status", "updated_at").first(),
        existing_order_id=Order.objects.filter(account=account, client_order_id=client_order_id)
        .values_list("id", flat=True).first(),
        max_order_sizes=dict(limits.values_list("asset_id", "max_order_size")),
        fee_schedules={m: (maker, taker) for m, maker, taker in
                       schedules.values_list("market_id", "maker_fee_rate", "taker_fee_rate")},
    )


# --- the market lock ----------------------------------------------------------------------------------------


def market_lock(market_id: int, *, wait: bool) -> bool:
    """Take the market's transaction-scoped lock: wait for it, or only try (``wait=False``) and say whether it
    was taken."""
    if _on_postgresql():
        return market_lock_postgresql(market_id, wait=wait)
    return market_lock_portable(market_id, wait=wait)


def market_lock_postgresql(market_id: int, *, wait: bool) -> bool:
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s::int, %s::int)::text", [LOCK_NAMESPACE, market_id])
        return wait or cursor.fetchone()[0] == "true"


def market_lock_portable(market_id: int, *, wait: bool) -> bool:
    """Nothing to take: SQLite lets one transaction write at a time, which serialises writes anyway."""
    return True


# --- cancel sequence numbers --------------------------------------------------------------------------------


def cancel_seq_next(market_id: int) -> int:
    """Count one more cancel of resting orders in the market and return the new number. Call in a transaction:
    the market row stays locked until it ends."""
    if _on_postgresql():
        return cancel_seq_next_postgresql(market_id)
    return cancel_seq_next_portable(market_id)


def cancel_seq_next_postgresql(market_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE trading_market SET cancel_seq = cancel_seq + 1 WHERE id = %s RETURNING cancel_seq", [market_id]
        )
        return cursor.fetchone()[0]


def cancel_seq_next_portable(market_id: int) -> int:
    """The same as an update and a read (``UPDATE ... RETURNING`` needs SQLite 3.35; Django 5.2 allows 3.31)."""
    Market.objects.filter(pk=market_id).update(cancel_seq=F("cancel_seq") + 1)
    return Market.objects.filter(pk=market_id).values_list("cancel_seq", flat=True).get()


# --- candles ------------------------------------------------------------------------------------------------

CANDLE_COLUMNS = CandleRow._fields  # granularity, start, open, high, low, close, volume, ..., last_fill_id


def candles_upsert(market_id: int, rows: list[CandleRow]) -> None:
    """Merge a matcher batch's candles (at most one row per granularity and bucket) into the market's: one
    statement. Call under the market's lock, in the transaction that writes the fills."""
    if not rows:
        return
    if _on_postgresql():
        return candles_upsert_postgresql(market_id, rows)
    return candles_upsert_portable(market_id, rows)


CANDLE_ARRAY_TYPES = ("integer", "timestamptz", *["numeric"] * 6, "integer", "bigint", "bigint")
CANDLES_UPSERT = (
    f"INSERT INTO trading_candle AS c (market_id, {', '.join(CANDLE_COLUMNS)})"
    f" SELECT %s, * FROM unnest({', '.join(f'%s::{t}[]' for t in CANDLE_ARRAY_TYPES)})"
    " ON CONFLICT (market_id, granularity, start) DO UPDATE SET"
    " open = CASE WHEN excluded.first_fill_id < c.first_fill_id THEN excluded.open ELSE c.open END,"
    " close = CASE WHEN excluded.last_fill_id > c.last_fill_id THEN excluded.close ELSE c.close END,"
    " high = greatest(c.high, excluded.high), low = least(c.low, excluded.low),"
    " volume = c.volume + excluded.volume, quote_volume = c.quote_volume + excluded.quote_volume,"
    " trade_count = c.trade_count + excluded.trade_count,"
    " first_fill_id = least(c.first_fill_id, excluded.first_fill_id),"
    " last_fill_id = greatest(c.last_fill_id, excluded.last_fill_id)"
)


def candles_upsert_postgresql(market_id: int, rows: list[CandleRow]) -> None:
    """One statement: the rows' columns as arrays (``unnest``), merged into stored candles as ``candle_merge``
    does."""
    with connection.cursor() as cursor:
        cursor.execute(CANDLES_UPSERT, [market_id, *(list(column) for column in zip(*rows))])


def candles_upsert_portable(market_id: int, rows: list[CandleRow]) -> None:
    """The same merge in Python, a read and a write per row (SQLite serialises writers, so nothing interleaves)."""
    for row in rows:
        stored = Candle.objects.filter(market_id=market_id, granularity=row.granularity, start=row.start).first()
        if stored is None:
            Candle.objects.create(market_id=market_id, **row._asdict())
            continue
        merged = candle_merge(CandleRow(*(getattr(stored, name) for name in CANDLE_COLUMNS)), row)
        for name, value in merged._asdict().items():
            setattr(stored, name, value)
        stored.save()


def candles_rebuild(market_id: int, start: datetime, end: datetime) -> int:
    """Recompute from the fills every candle of the market in ``[start, end)``, which must be whole days (UTC):
    deletes the stored ones and inserts them afresh. Returns how many candles it wrote. Call under the market's
    lock (``market_lock``): the matcher must not roll up fills of the range meanwhile."""
    if _on_postgresql():
        return candles_rebuild_postgresql(market_id, start, end)
    return candles_rebuild_portable(market_id, start, end)


def candles_rebuild_postgresql(market_id: int, start: datetime, end: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM trading_candle WHERE market_id = %s AND start >= %s AND start < %s",
                       [market_id, start, end])
        cursor.execute(
            f"INSERT INTO trading_candle (market_id, {', '.join(CANDLE_COLUMNS)})"
            " SELECT f.market_id, g.seconds, b.start, (array_agg(f.price ORDER BY f.id))[1], max(f.price),"
            " min(f.price), (array_agg(f.price ORDER BY f.id DESC))[1], sum(f.size), sum(f.quote_amount), count(*),"
            " min(f.id), max(f.id)"
            " FROM trading_fill f CROSS JOIN unnest(%s::integer[]) AS g(seconds)"
            " CROSS JOIN LATERAL (SELECT date_bin(make_interval(secs => g.seconds), f.created_at,"
            " timestamptz '1970-01-01 00:00:00+00') AS start) b"
            " WHERE f.market_id = %s AND f.created_at >= %s AND f.created_at < %s"
            " GROUP BY f.market_id, g.seconds, b.start",
            [list(GRANULARITIES), market_id, start, end],
        )
        return cursor.rowcount


def candles_rebuild_portable(market_id: int, start: datetime, end: datetime) -> int:
    Candle.objects.filter(market_id=market_id, start__gte=start, start__lt=end).delete()
    fills = Fill.objects.filter(market_id=market_id, created_at__gte=start, created_at__lt=end).values_list(
        "id", "price", "size", "quote_amount", "created_at")
    rows = candles_of(FillTrade(*values) for values in fills)
    Candle.objects.bulk_create([Candle(market_id=market_id, **row._asdict()) for row in rows])
    return len(rows)
