"""Every hand-written statement of trading, the PostgreSQL one and its portable twin side by side.

Each statement has three doors: ``<name>_postgresql`` and ``<name>_portable``, callable explicitly (the parity
tests run both against the same rows), and ``<name>``, which picks one by the connection's vendor. This is the
only module of trading that asks for the vendor. The portable twins are plain ORM code, for the embedded
SQLite default; they also run on PostgreSQL, which is how the parity tests cover them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Case, DecimalField, F, Q, Sum, Value, When
from django.db.models.functions import Coalesce

from accounts.models import AssetLimit, ClientAccount
from audit.models import AuditLog
from core.db import insert_statement, models_select, prepared_cursor
from events.services import NewEvent, events_record, events_record_statement
from ledger import services as ledger
from trading.candles import GRANULARITIES, CandleRow, FillTrade, candle_merge, candles_of
from trading.models import (
    OPEN_STATUSES,
    RESTING_STATUSES,
    AccountTradingControl,
    Candle,
    FeeSchedule,
    Fill,
    Market,
    Order,
)

OPEN = tuple(str(status) for status in OPEN_STATUSES)  # a waiting stop counts as open
PRICED = ("limit", "stop_limit")
UNPRICED_WAITING = ("new", "pending_trigger")  # a market or stop-market order by funds that has not run yet
Records = Callable[[Order], tuple[AuditLog, list[NewEvent]]]  # a placed order's audit row and events
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
    kill_switch: bool = False  # the account's kill switch is engaged (trading.services.controls)
    risk: RiskReads | None = None  # pre-trade risk's reads, when asked for (``risk_reads``)
    # PostgreSQL: (order id, hold id) taken from their sequences, so that ``placement_write`` can send every write
    # of the placement in one statement (an unused pair leaves a gap in the ids, as a rolled back insert does).
    new_ids: tuple[int, int] | None = None


def placement_reads(account: ClientAccount, market: Market, client_order_id: str,
                    risk: RiskQuery | None = None) -> PlacementReads:
    """What placing needs from the database, in one round trip: the market's current version (its status is
    checked fresh in the transaction), an order already stored under the client order id, the account's order
    size limits in the market's assets, its tier's fee schedules, its kill switch and, with ``risk``, pre-trade
    risk's reads (``risk_reads``).

    It also locks the client account's row (``FOR NO KEY UPDATE``) until the transaction ends: one account's
    placements and its kill switch, dead-man switch and per-client risk caps are decided one at a time (a kill
    switch waits for an order being placed and then cancels it; two orders cannot both pass an open-order cap).
    Inserts referencing the account (orders, fills, holds) take only ``KEY SHARE`` and never wait for it."""
    if _on_postgresql():
        return placement_reads_postgresql(account, market, client_order_id, risk)
    return placement_reads_portable(account, market, client_order_id, risk)


def placement_reads_postgresql(account: ClientAccount, market: Market, client_order_id: str,
                               risk: RiskQuery | None = None) -> PlacementReads:
    risk_parts, risk_params = _risk_parts(account.pk, market.pk, risk) if risk else ([], [])
    with prepared_cursor() as cursor:
        cursor.execute(
            "WITH account AS MATERIALIZED (SELECT id FROM accounts_clientaccount WHERE id = %s FOR NO KEY UPDATE)"
            " SELECT 'market', id, status, NULL::numeric, NULL::numeric, updated_at FROM trading_market"
            " WHERE symbol = %s"
            " UNION ALL"
            " SELECT 'order', id, NULL, NULL, NULL, NULL FROM trading_order"
            " WHERE account_id = %s AND client_order_id = %s"
            " UNION ALL"
            " SELECT 'limit', NULL, asset_id, max_order_size, NULL, NULL FROM accounts_assetlimit"
            " WHERE account_id = %s AND asset_id IN (%s, %s) AND max_order_size IS NOT NULL"
            " UNION ALL"
            " SELECT 'fees', market_id, NULL, maker_fee_rate, taker_fee_rate, NULL FROM trading_feeschedule"
            " WHERE tier = %s AND (market_id = %s OR market_id IS NULL)"
            " UNION ALL"
            " SELECT 'control', a.id, c.kill_switch::text, NULL, NULL, NULL FROM account a"
            " LEFT JOIN trading_accounttradingcontrol c ON c.account_id = a.id"
            " UNION ALL"
            " SELECT 'ids', nextval(pg_get_serial_sequence('trading_order', 'id')),"
            " nextval(pg_get_serial_sequence('ledger_hold', 'id'))::text, NULL, NULL, NULL"
            + "".join(f" UNION ALL SELECT r.kind, NULL, NULL, r.value, NULL, NULL FROM ({part}) AS r(kind, value)"
                      for part in risk_parts),
            [account.pk, market.symbol, account.pk, client_order_id, account.pk, market.base_id, market.quote_id,
             account.tier, market.pk, *risk_params],
        )
        rows = cursor.fetchall()
    return PlacementReads(
        market_version=next(((id_, status, at) for kind, id_, status, _, _, at in rows if kind == "market"), None),
        existing_order_id=next((id_ for kind, id_, *_ in rows if kind == "order"), None),
        max_order_sizes={asset: limit for kind, _, asset, limit, *_ in rows if kind == "limit"},
        fee_schedules={market_id: (maker, taker) for kind, market_id, _, maker, taker, _ in rows if kind == "fees"},
        kill_switch=any(kind == "control" and flag == "true" for kind, _, flag, *_ in rows),
        risk=_risk_found({kind: value for kind, _, _, value, *_ in rows if kind.startswith("risk:")}) if risk
        else None,
        new_ids=next((order_id, int(hold_id)) for kind, order_id, hold_id, *_ in rows if kind == "ids"),
    )


def placement_reads_portable(account: ClientAccount, market: Market, client_order_id: str,
                             risk: RiskQuery | None = None) -> PlacementReads:
    """The same reads as ORM queries (the ``UNION ALL`` above relies on PostgreSQL's casts)."""
    list(ClientAccount.objects.select_for_update(no_key=True).filter(pk=account.pk).values_list("pk"))
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
        kill_switch=AccountTradingControl.objects.filter(account=account, kill_switch=True).exists(),
        risk=risk_reads_portable(account.pk, market.pk, risk) if risk else None,
    )


# --- order placement's writes -------------------------------------------------------------------------------


def placement_write(order: Order, *, records: Records, field: str) -> None:
    """Store a placed order: its hold (``order.hold``, not saved yet), the order, and what ``records(order)``
    gives once the order has its id: its audit row and its events, and reserve what the hold holds; or raise
    InsufficientFunds naming ``field`` and write nothing at all, so that a caller placing several orders in one
    transaction needs no savepoint per order (``trading.services.batches``)."""
    if _on_postgresql():
        placement_write_postgresql(order, records=records, field=field)
    else:
        placement_write_portable(order, records=records, field=field)


RESERVED = "EXISTS (SELECT FROM reserved)"


def placement_write_postgresql(order: Order, *, records: Records, field: str) -> None:
    """One round trip, with the order's and the hold's ids taken beforehand (``PlacementReads.new_ids``): the
    reservation and, only if it reserved, the inserts, as data-modifying CTEs (PostgreSQL runs each exactly once;
    the foreign keys between the new rows, order -> hold, are checked at the commit). The balance row is locked by
    the statement, whose transaction commits next. Nothing reserved: the balance row is missing or short, and
    the lock-and-check path refuses, or creates the row and reserves, and then the inserts go on their own."""
    update, update_params = ledger.hold_reserve_statement(order.hold)
    reserve = ("reserved", f"{update} RETURNING 1", update_params)
    with prepared_cursor() as cursor:
        cursor.execute(*_ctes([reserve, *_placement_inserts(order, records, when=RESERVED)],
                              "SELECT count(*) FROM reserved"))
        [(reserved,)] = cursor.fetchall()
    if reserved:
        return
    ledger.hold_reserve_checked(order.hold, field=field)
    with prepared_cursor() as cursor:
        cursor.execute(*_ctes(_placement_inserts(order, records), "SELECT 1"))


def _ctes(parts: list[tuple[str, str, list]], query: str) -> tuple[str, list]:
    """One statement: ``WITH`` each (name, data-modifying statement, parameters) of ``parts``, then ``query``."""
    return (f"WITH {', '.join(f'{name} AS ({text})' for name, text, _ in parts)} {query}",
            [param for _, _, params in parts for param in params])


def _placement_inserts(order: Order, records: Records, *, when: str | None = None) -> list[tuple[str, str, list]]:
    parts = [insert_statement(order.hold, when=when), insert_statement(order, when=when)]  # first: the timestamps
    audit, events = records(order)
    parts += [insert_statement(audit, when=when), events_record_statement(events, when=when)]
    return [(f"w{i}", text, params) for i, (text, params) in enumerate(parts)]


def placement_write_portable(order: Order, *, records: Records, field: str) -> None:
    """One write at a time, the ids assigned by the inserts unless taken beforehand; the reservation first, the
    only write that can refuse (SQLite has one writer at a time, so the order of row locks is moot there)."""
    ledger.hold_reserve_checked(order.hold, field=field)
    order.hold.save(force_insert=True)
    order.save(force_insert=True)
    audit, events = records(order)
    audit.save(force_insert=True)
    events_record(events)


# --- pre-trade risk's reads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskQuery:
    """Which of pre-trade risk's reads an order needs (``trading.services.risk.reads_needed``)."""

    reference: bool = False  # the best bid and ask and the last trade price
    open_orders: bool = False  # the account's open orders in the market
    daily_since: datetime | None = None  # the notional of the account's orders placed since then


@dataclass(frozen=True)
class RiskReads:
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    last_price: Decimal | None = None
    open_orders: int | None = None  # the account's open orders in the market (when asked)
    daily_notional: Decimal | None = None  # the notional of its orders placed since ``daily_since`` (when asked)


def risk_reads(account_id: int, market_id: int, query: RiskQuery) -> RiskReads:
    """What ``trading.services.risk`` needs, in one round trip (placing reads it with ``placement_reads``): the
    best bid and ask and the last trade price, the account's open orders in the market and the notional its
    orders placed since ``daily_since`` traded or still commit: ``filled_quote``, plus an open limit order's
    remaining ``price x (size - filled_size)``, or a new market order's ``funds``; rejected orders count nothing."""
    if _on_postgresql():
        return risk_reads_postgresql(account_id, market_id, query)
    return risk_reads_portable(account_id, market_id, query)


_RESTING = f"status IN ({', '.join(repr(str(status)) for status in RESTING_STATUSES)})"
_OPEN = f"status IN ({', '.join(repr(status) for status in OPEN)})"


def _risk_parts(account_id: int, market_id: int, query: RiskQuery) -> tuple[list[str], list]:
    """The statements of ``query``, each one row or none of (kind, numeric value), and their parameters."""
    parts, params = [], []
    if query.reference:
        for kind, side, direction in (("bid", "buy", "DESC"), ("ask", "sell", "ASC")):
            parts.append(f"SELECT 'risk:{kind}', price FROM trading_order WHERE market_id = %s AND side = '{side}'"
                         f" AND {_RESTING} ORDER BY price {direction} LIMIT 1")
            params.append(market_id)
        parts.append("SELECT 'risk:last', price FROM trading_fill WHERE market_id = %s ORDER BY id DESC LIMIT 1")
        params.append(market_id)
    if query.open_orders:
        parts.append(f"SELECT 'risk:open', count(*)::numeric FROM trading_order WHERE account_id = %s"
                     f" AND market_id = %s AND {_OPEN}")
        params += [account_id, market_id]
    if query.daily_since is not None:
        parts.append(
            "SELECT 'risk:daily', COALESCE(SUM(CASE"
            f" WHEN {_OPEN} AND type IN {PRICED!r} THEN filled_quote + price * (size - filled_size)"
            f" WHEN status IN {UNPRICED_WAITING!r} AND funds IS NOT NULL THEN funds ELSE filled_quote END), 0)"
            " FROM trading_order WHERE account_id = %s AND market_id = %s AND created_at >= %s"
            " AND status <> 'rejected'")
        params += [account_id, market_id, query.daily_since]
    return parts, params


def _risk_found(found: dict) -> RiskReads:
    return RiskReads(best_bid=found.get("risk:bid"), best_ask=found.get("risk:ask"),
                     last_price=found.get("risk:last"),
                     open_orders=int(found["risk:open"]) if "risk:open" in found else None,
                     daily_notional=found.get("risk:daily"))


def risk_reads_postgresql(account_id: int, market_id: int, query: RiskQuery) -> RiskReads:
    parts, params = _risk_parts(account_id, market_id, query)
    if not parts:
        return RiskReads()
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(f"({part})" for part in parts), params)
        return _risk_found(dict(cursor.fetchall()))


def risk_reads_portable(account_id: int, market_id: int, query: RiskQuery) -> RiskReads:
    reads = {}
    if query.reference:
        resting = Order.objects.filter(market_id=market_id, status__in=RESTING_STATUSES)
        reads["best_bid"] = resting.filter(side="buy").order_by("-price").values_list("price", flat=True).first()
        reads["best_ask"] = resting.filter(side="sell").order_by("price").values_list("price", flat=True).first()
        reads["last_price"] = (Fill.objects.filter(market_id=market_id).order_by("-id")
                               .values_list("price", flat=True).first())
    own = Order.objects.filter(account_id=account_id, market_id=market_id)
    if query.open_orders:
        reads["open_orders"] = own.filter(status__in=OPEN).count()
    if query.daily_since is not None:
        reads["daily_notional"] = own.filter(created_at__gte=query.daily_since).exclude(status="rejected").aggregate(
            used=Coalesce(Sum(Case(
                When(Q(status__in=OPEN, type__in=PRICED),
                     then=F("filled_quote") + F("price") * (F("size") - F("filled_size"))),
                When(Q(status__in=UNPRICED_WAITING, funds__isnull=False), then=F("funds")),
                default=F("filled_quote"),
            )), Value(Decimal(0)), output_field=DecimalField()))["used"]
    return RiskReads(**reads)


# --- the market lock ----------------------------------------------------------------------------------------


def market_lock(market_id: int, *, wait: bool) -> bool:
    """Take the market's transaction-scoped lock: wait for it, or only try (``wait=False``) and say whether it
    was taken."""
    if _on_postgresql():
        return market_lock_postgresql(market_id, wait=wait)
    return market_lock_portable(market_id, wait=wait)


def market_lock_postgresql(market_id: int, *, wait: bool) -> bool:
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    with prepared_cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s::int, %s::int)::text", [LOCK_NAMESPACE, market_id])
        return wait or cursor.fetchone()[0] == "true"


def market_lock_portable(market_id: int, *, wait: bool) -> bool:
    """Nothing to take: SQLite lets one transaction write at a time, which serialises writes anyway."""
    return True


# --- the matcher's batch -----------------------------------------------------------------------------------
# Read and written once per batch whatever its size: at a few orders a second every batch holds one order or
# two, and these fixed statements were most of its cost as compiled ORM queries.


def market_version(market_id: int) -> tuple | None:
    """The market's (created_at, status, updated_at, match_seq, cancel_seq), or None if there is no such market.
    Every change of the row but the two counters moves ``updated_at``; ``created_at`` tells a market from one
    that reuses its id after a test flushes the database."""
    if _on_postgresql():
        return market_version_postgresql(market_id)
    return market_version_portable(market_id)


def market_version_postgresql(market_id: int) -> tuple | None:
    with prepared_cursor() as cursor:
        cursor.execute("SELECT created_at, status, updated_at, match_seq, cancel_seq FROM trading_market"
                       " WHERE id = %s", [market_id])
        return cursor.fetchone()


def market_version_portable(market_id: int) -> tuple | None:
    return (Market.objects.filter(pk=market_id)
            .values_list("created_at", "status", "updated_at", "match_seq", "cancel_seq").first())


def orders_new(market_id: int, limit: int) -> list[Order]:
    """The market's oldest ``new`` orders, at most ``limit``, with their holds."""
    if _on_postgresql():
        return orders_new_postgresql(market_id, limit)
    return orders_new_portable(market_id, limit)


def orders_new_postgresql(market_id: int, limit: int) -> list[Order]:
    return models_select(Order, "m.market_id = %s AND m.status = 'new' ORDER BY m.id LIMIT %s", [market_id, limit],
                         related="hold")


def orders_new_portable(market_id: int, limit: int) -> list[Order]:
    return list(Order.objects.filter(market_id=market_id, status="new").select_related("hold").order_by("id")[:limit])


def orders_with_holds(order_ids: Collection[int]) -> list[Order]:
    """These orders, with their holds."""
    if _on_postgresql():
        return orders_with_holds_postgresql(order_ids)
    return orders_with_holds_portable(order_ids)


def orders_with_holds_postgresql(order_ids: Collection[int]) -> list[Order]:
    return models_select(Order, "m.id = ANY(%s::bigint[])", [list(order_ids)], related="hold")


def orders_with_holds_portable(order_ids: Collection[int]) -> list[Order]:
    return list(Order.objects.filter(pk__in=order_ids).select_related("hold"))


def match_seq_next(market_id: int) -> None:
    """Count one more committed batch of the market (``Market.match_seq``)."""
    if _on_postgresql():
        match_seq_next_postgresql(market_id)
    else:
        match_seq_next_portable(market_id)


def match_seq_next_postgresql(market_id: int) -> None:
    with prepared_cursor() as cursor:
        cursor.execute("UPDATE trading_market SET match_seq = match_seq + 1 WHERE id = %s", [market_id])


def match_seq_next_portable(market_id: int) -> None:
    Market.objects.filter(pk=market_id).update(match_seq=F("match_seq") + 1)


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
    with prepared_cursor() as cursor:
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
