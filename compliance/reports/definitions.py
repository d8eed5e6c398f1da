"""The compliance reports: for each, its columns and a generator of rows over a date range and scope.

Rows come from the database in a stable order (by id, or by account, asset and id for statements) through
server-side cursors in chunks, so no report holds more than a chunk of rows in memory and the same range always
produces the same rows. Values are formatted here, once, so every output format shows the same text: amounts at
their asset's precision, timestamps in fixed-width UTC.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from functools import cached_property, partial

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from accounts.models import ClientAccount, Deposit, Withdrawal
from audit.models import AuditLog
from core.representation import fixed
from ledger.dates import day_end, iso_utc, utc_date
from ledger.models import LedgerAccount, Posting, Purpose
from ledger.money import quantum
from ledger.selectors import asset_precisions, natural_sign_sql
from ledger.snapshots import BEGINNING_OF_TIME, snapshot_base_day
from trading import amounts
from trading.models import Conversion, Fill, Quote, QuoteStatus
from trading.pricing import EXACT

CHUNK_SIZE = 2000


@dataclass
class Scope:
    """What a report covers: ``start <= t < end``, one client account or (None) the whole firm."""

    start: datetime
    end: datetime
    account: ClientAccount | None = None

    @cached_property
    def ledger_account(self) -> LedgerAccount | None:
        return LedgerAccount.objects.filter(client=self.account).first() if self.account else None

    @cached_property
    def precisions(self) -> dict[str, int]:
        return asset_precisions()

    def amount(self, value, asset: str) -> str | None:
        if value is None:
            return None
        return format(Decimal(value).quantize(quantum(self.precisions[asset])), "f")


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    description: str
    columns: tuple[str, ...]
    rows: Callable[[Scope], Iterator[tuple]]
    count: Callable[[Scope], int]


def _canonical_json(value) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _as_datetime(value) -> datetime:
    """Raw SQL returns text on SQLite; PostgreSQL returns aware datetimes."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _sql_datetime(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


# --- trade blotter ----------------------------------------------------------------------------------------

BLOTTER_COLUMNS = (
    "fill_id", "executed_at", "market", "base_asset", "quote_asset", "price", "size", "quote_amount",
    "aggressor_side", "maker_account_id", "maker_order_id", "maker_client_order_id", "maker_side",
    "maker_order_placed_at", "maker_fee", "taker_account_id", "taker_order_id", "taker_client_order_id",
    "taker_side", "taker_order_placed_at", "taker_fee", "buyer_quote", "seller_quote", "entry_id",
    "trade_type", "trade_id", "counterparty", "maker_metadata", "taker_metadata",
)
# Every trade of the range in time order: fills between two clients' orders, quotes executed against the firm's
# inventory and stablecoin conversions. A quote or conversion has the client as taker and the firm's inventory
# (``counterparty``) as maker; a conversion reads as a trade of the stablecoin against its fiat at a price of 1.
FIRM_PRINCIPAL = "firm:inventory"
TRADE_ORDER = {"fill": 0, "quote": 1, "conversion": 2}


def _fills(scope: Scope):
    fills = Fill.objects.filter(created_at__gte=scope.start, created_at__lt=scope.end)
    if scope.account:
        fills = fills.filter(Q(maker_order__account=scope.account) | Q(taker_order__account=scope.account))
    return fills


def _quotes(scope: Scope):
    quotes = Quote.objects.filter(status=QuoteStatus.EXECUTED, executed_at__gte=scope.start, executed_at__lt=scope.end)
    return quotes.filter(account=scope.account) if scope.account else quotes


def _conversions(scope: Scope):
    conversions = Conversion.objects.filter(created_at__gte=scope.start, created_at__lt=scope.end)
    return conversions.filter(account=scope.account) if scope.account else conversions


def _fill_rows(scope: Scope) -> Iterator[tuple]:
    rows = _fills(scope).order_by("created_at", "id").values_list(
        "id", "created_at", "market__symbol", "market__base_id", "market__quote_id", "market__tick_size", "price",
        "size", "quote_amount", "aggressor_side",
        "maker_order__account_id", "maker_order_id", "maker_order__client_order_id", "maker_order__side",
        "maker_order__created_at", "maker_fee",
        "taker_order__account_id", "taker_order_id", "taker_order__client_order_id", "taker_order__side",
        "taker_order__created_at", "taker_fee", "buyer_quote", "seller_quote", "entry_id",
        "maker_order__metadata", "taker_order__metadata",
    )
    for (fill_id, at, market, base, quote, tick_size, price, size, notional, aggressor, maker_account, maker_order,
         maker_coid, maker_side, maker_at, maker_fee, taker_account, taker_order, taker_coid, taker_side, taker_at,
         taker_fee, buyer_quote, seller_quote, entry_id, maker_metadata, taker_metadata,
         ) in rows.iterator(chunk_size=CHUNK_SIZE):
        market_amount = partial(_market_amount, scope, base=base, quote=quote, tick_size=Decimal(tick_size))
        yield (at, "fill", fill_id), (
            fill_id, iso_utc(at), market, base, quote, market_amount("price", price), scope.amount(size, base),
            market_amount("exact", notional), aggressor, maker_account, maker_order, maker_coid, maker_side,
            iso_utc(maker_at), market_amount("exact", maker_fee), taker_account, taker_order, taker_coid, taker_side,
            iso_utc(taker_at), market_amount("exact", taker_fee),
            scope.amount(buyer_quote, quote), scope.amount(seller_quote, quote), entry_id, "fill", fill_id, None,
            _metadata(maker_metadata), _metadata(taker_metadata),
        )


def _metadata(pairs) -> str | None:
    """The client's order metadata as compact JSON with sorted keys (empty when it gave none)."""
    return json.dumps(pairs, sort_keys=True, separators=(",", ":")) if pairs else None


def _market_amount(scope: Scope, kind: str, value, *, base: str, quote: str, tick_size: Decimal) -> str:
    """Prices, notionals and fees as the API writes them (``trading.amounts``): ``30000.00``, not ``30000``."""
    value = Decimal(value)
    return fixed(value, amounts.places(kind, base_precision=scope.precisions[base],
                                       quote_precision=scope.precisions[quote], tick_size=tick_size, value=value))


def _quote_rows(scope: Scope) -> Iterator[tuple]:
    rows = _quotes(scope).order_by("executed_at", "id").values_list(
        "id", "executed_at", "created_at", "market__symbol", "market__base_id", "market__quote_id",
        "market__tick_size", "side", "price", "size", "quote_amount", "fee", "total", "account_id", "entry__id",
    )
    for (quote_id, at, quoted_at, market, base, quote, tick_size, side, price, size, quote_amount, fee, total,
         account_id, entry_id) in rows.iterator(chunk_size=CHUNK_SIZE):
        market_amount = partial(_market_amount, scope, base=base, quote=quote, tick_size=Decimal(tick_size))
        buyer_quote, seller_quote = (total, quote_amount) if side == "buy" else (quote_amount, total)
        yield (at, "quote", quote_id), (
            None, iso_utc(at), market, base, quote, market_amount("price", price), scope.amount(size, base),
            market_amount("exact", _product(price, size)),
            side, None, None, None, "sell" if side == "buy" else "buy", None, "0",
            account_id, None, None, side, iso_utc(quoted_at), market_amount("exact", fee),
            scope.amount(buyer_quote, quote), scope.amount(seller_quote, quote), entry_id, "quote", quote_id,
            FIRM_PRINCIPAL, None, None,
        )


def _product(a: Decimal, b: Decimal) -> Decimal:
    with localcontext(EXACT):
        return a * b


def _conversion_market(source: str, target: str) -> tuple[str, str, str]:
    """(base, quote, the client's side): the stablecoin is the base, its fiat the quote, of a configured pair."""
    for fiat, coin in settings.CONVERSION_PAIRS:
        if (source, target) == (fiat, coin):
            return coin, fiat, "buy"
        if (source, target) == (coin, fiat):
            return coin, fiat, "sell"
    return target, source, "buy"


def _conversion_rows(scope: Scope) -> Iterator[tuple]:
    rows = _conversions(scope).order_by("created_at", "id").values_list(
        "id", "created_at", "from_asset_id", "to_asset_id", "amount", "account_id", "entry__id",
    )
    for conversion_id, at, source, target, amount, account_id, entry_id in rows.iterator(chunk_size=CHUNK_SIZE):
        base, quote, side = _conversion_market(source, target)
        yield (at, "conversion", conversion_id), (
            None, iso_utc(at), f"{base}-{quote}", base, quote, fixed(Decimal(1), scope.precisions[quote]),
            scope.amount(amount, base), scope.amount(amount, quote),
            side, None, None, None, "sell" if side == "buy" else "buy", None, "0",
            account_id, None, None, side, iso_utc(at), "0",
            scope.amount(amount, quote), scope.amount(amount, quote), entry_id, "conversion", conversion_id,
            FIRM_PRINCIPAL, None, None,
        )


def _blotter_rows(scope: Scope) -> Iterator[tuple]:
    streams = (_fill_rows(scope), _quote_rows(scope), _conversion_rows(scope))
    merged = heapq.merge(*streams, key=lambda r: (r[0][0], TRADE_ORDER[r[0][1]], r[0][2]))
    for _, row in merged:
        yield row


def _blotter_count(scope: Scope) -> int:
    return _fills(scope).count() + _quotes(scope).count() + _conversions(scope).count()


# --- ledger journal ---------------------------------------------------------------------------------------

JOURNAL_COLUMNS = (
    "posting_id", "entry_id", "entry_key", "entry_kind", "posted_at", "ledger_account", "client_account_id",
    "asset", "debit", "credit", "memo", "reverses_entry_id", "created_by_user_id",
)


def _postings(scope: Scope):
    postings = Posting.objects.filter(created_at__gte=scope.start, created_at__lt=scope.end)
    if scope.account:
        postings = postings.filter(account=scope.ledger_account)
    return postings


def _journal_rows(scope: Scope) -> Iterator[tuple]:
    rows = _postings(scope).order_by("id").values_list(
        "id", "entry_id", "entry__key", "entry__kind", "created_at", "account__code", "account__client_id",
        "asset_id", "amount", "entry__memo", "entry__reverses_id", "entry__created_by_id",
    )
    for (posting_id, entry_id, key, kind, at, code, client_id, asset, amount, memo, reverses,
         created_by) in rows.iterator(chunk_size=CHUNK_SIZE):
        debit = scope.amount(amount, asset) if amount > 0 else None
        credit = scope.amount(-amount, asset) if amount < 0 else None
        yield (posting_id, entry_id, key, kind, iso_utc(at), code, client_id, asset, debit, credit, memo, reverses,
               created_by)


# --- account statement ------------------------------------------------------------------------------------

STATEMENT_COLUMNS = (
    "ledger_account", "client_account_id", "asset", "line", "at", "posting_id", "entry_id", "entry_kind", "memo",
    "amount", "balance",
)

# Line 0 per (account, asset): the opening balance, from the latest snapshot before the range plus the postings
# between that snapshot and the start. Lines 1: the postings in the range. One statement, one consistent read.
STATEMENT_SQL = """
SELECT la.code, la.client_id, u.asset_id, u.line, u.posting_id, u.created_at, u.entry_id, u.kind, u.memo, u.amount
  FROM (
      SELECT o.account_id, o.asset_id, 0 AS line, NULL AS posting_id, NULL AS created_at, NULL AS entry_id,
             NULL AS kind, NULL AS memo, SUM(o.amount) AS amount
        FROM (
            SELECT s.account_id, s.asset_id, s.amount
              FROM ledger_balancesnapshot s
             WHERE s.day = %(base_day)s {snapshot_scope}
            UNION ALL
            SELECT p.account_id, p.asset_id, CASE WHEN p.created_at < %(start)s THEN p.amount * {sign} ELSE 0 END
              FROM ledger_posting p JOIN ledger_ledgeraccount a ON a.id = p.account_id
             WHERE p.created_at >= %(since)s AND p.created_at < %(end)s {posting_scope}
        ) o
       GROUP BY o.account_id, o.asset_id
      UNION ALL
      SELECT p.account_id, p.asset_id, 1, p.id, p.created_at, p.entry_id, e.kind, e.memo, p.amount * {sign}
        FROM ledger_posting p
        JOIN ledger_ledgeraccount a ON a.id = p.account_id
        JOIN ledger_journalentry e ON e.id = p.entry_id
       WHERE p.created_at >= %(start)s AND p.created_at < %(end)s {posting_scope}
  ) u
  JOIN ledger_ledgeraccount la ON la.id = u.account_id
 ORDER BY u.account_id, u.asset_id, u.line, u.posting_id
"""


def _statement_query(scope: Scope) -> tuple[str, dict]:
    base = snapshot_base_day(before=utc_date(scope.start))
    # A client account without a ledger account matches nothing (``= NULL``), as the ORM reports do.
    account_id = scope.ledger_account.pk if scope.ledger_account else None
    sql = STATEMENT_SQL.format(
        sign=natural_sign_sql("a.type"),
        snapshot_scope="AND s.account_id = %(account_id)s" if scope.account else "",
        posting_scope="AND p.account_id = %(account_id)s" if scope.account else "",
    )
    params = {
        "base_day": connection.ops.adapt_datefield_value(base),
        "since": _sql_datetime(day_end(base) if base else BEGINNING_OF_TIME),
        "start": _sql_datetime(scope.start),
        "end": _sql_datetime(scope.end),
        "account_id": account_id,
    }
    return sql, params


def _statement_rows(scope: Scope) -> Iterator[tuple]:
    """Opening line, posting lines with a running balance, and a closing line per (account, asset).

    The closing line's ``amount`` is the net of the postings, so ``closing = opening + amount`` on every statement.
    """
    sql, params = _statement_query(scope)
    pending_close = None
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK_SIZE):
            for code, client_id, asset, line, posting_id, at, entry_id, kind, memo, amount in rows:
                amount = Decimal(str(amount))
                if line == 0:
                    if pending_close:
                        yield _closing_line(scope, *pending_close)
                    opening = balance = amount
                    pending_close = [code, client_id, asset, opening, balance]
                    yield (code, client_id, asset, "opening", iso_utc(scope.start), None, None, None, None, None,
                           scope.amount(opening, asset))
                    continue
                pending_close[4] += amount
                yield (code, client_id, asset, "posting", iso_utc(_as_datetime(at)), posting_id, entry_id, kind,
                       memo, scope.amount(amount, asset), scope.amount(pending_close[4], asset))
    if pending_close:
        yield _closing_line(scope, *pending_close)


def _closing_line(scope: Scope, code, client_id, asset, opening, closing) -> tuple:
    return (code, client_id, asset, "closing", iso_utc(scope.end), None, None, None, None,
            scope.amount(closing - opening, asset), scope.amount(closing, asset))


def _statement_count(scope: Scope) -> int:
    sql, params = _statement_query(scope)
    with connection.cursor() as cursor:
        # Every opening line (line 0) also has a closing line.
        cursor.execute(f"SELECT COUNT(*) + SUM(CASE WHEN line = 0 THEN 1 ELSE 0 END) FROM ({sql}) x", params)
        return cursor.fetchone()[0] or 0


# --- deposits and withdrawals -----------------------------------------------------------------------------

FUNDING_COLUMNS = (
    "type", "id", "requested_at", "updated_at", "client_account_id", "asset", "amount", "status",
    "requested_by_user_id", "approved_by_user_id", "second_approved_by_user_id", "blockchain_address", "tx_hash",
    "bank_reference", "entry_id",
)
FUNDING_FIELDS = (
    "created_at", "id", "updated_at", "account_id", "asset_id", "amount", "status", "requested_by_id",
    "approved_by_id", "blockchain_address", "tx_hash", "bank_reference", "entry_id",
)


def _funding(model, scope: Scope):
    rows = model.objects.filter(created_at__gte=scope.start, created_at__lt=scope.end)
    return rows.filter(account=scope.account) if scope.account else rows


def _funding_rows(scope: Scope) -> Iterator[tuple]:
    deposits = (
        ("deposit", *row, None)
        for row in _funding(Deposit, scope).order_by("created_at", "id").values_list(*FUNDING_FIELDS)
        .iterator(chunk_size=CHUNK_SIZE)
    )
    withdrawals = (
        ("withdrawal", *row)
        for row in _funding(Withdrawal, scope).order_by("created_at", "id")
        .values_list(*FUNDING_FIELDS, "second_approved_by_id").iterator(chunk_size=CHUNK_SIZE)
    )
    merged = heapq.merge(deposits, withdrawals, key=lambda r: (r[1], r[0], r[2]))
    for (kind, at, pk, updated, account_id, asset, amount, status, requested_by, approved_by, address, tx_hash,
         bank_ref, entry_id, second_by) in merged:
        yield (kind, pk, iso_utc(at), iso_utc(updated), account_id, asset, scope.amount(amount, asset), status,
               requested_by, approved_by, second_by, address, tx_hash, bank_ref, entry_id)


def _funding_count(scope: Scope) -> int:
    return _funding(Deposit, scope).count() + _funding(Withdrawal, scope).count()


# --- large transactions -----------------------------------------------------------------------------------

LARGE_COLUMNS = (
    "posting_id", "entry_id", "entry_key", "entry_kind", "posted_at", "client_account_id", "ledger_account",
    "asset", "direction", "amount", "threshold",
)


def large_transaction_thresholds() -> dict[str, Decimal]:
    return dict(settings.LARGE_TRANSACTION_THRESHOLDS)


def _large_postings(scope: Scope):
    """Client postings (money in or out of a client's funds, by any cause) at or above the asset's threshold."""
    over = Q(pk__in=[])
    for asset, threshold in large_transaction_thresholds().items():
        over |= Q(asset_id=asset) & (Q(amount__gte=threshold) | Q(amount__lte=-threshold))
    return _postings(scope).filter(over, account__purpose=Purpose.CLIENT)


def _large_rows(scope: Scope) -> Iterator[tuple]:
    thresholds = large_transaction_thresholds()
    rows = _large_postings(scope).order_by("id").values_list(
        "id", "entry_id", "entry__key", "entry__kind", "created_at", "account__client_id", "account__code",
        "asset_id", "amount",
    )
    for posting_id, entry_id, key, kind, at, client_id, code, asset, amount in rows.iterator(chunk_size=CHUNK_SIZE):
        # A client account is a liability: a credit (negative posting) is money the client receives.
        direction = "in" if amount < 0 else "out"
        yield (posting_id, entry_id, key, kind, iso_utc(at), client_id, code, asset, direction,
               scope.amount(abs(amount), asset), scope.amount(thresholds[asset], asset))


# --- audit log --------------------------------------------------------------------------------------------

AUDIT_COLUMNS = (
    "audit_id", "at", "actor_user_id", "actor_label", "action", "object_type", "object_id", "client_account_id",
    "ip_address", "before", "after",
)


def _audit(scope: Scope):
    rows = AuditLog.objects.filter(at__gte=scope.start, at__lt=scope.end)
    return rows.filter(account=scope.account) if scope.account else rows


def _audit_rows(scope: Scope) -> Iterator[tuple]:
    rows = _audit(scope).order_by("id").values_list(
        "id", "at", "actor_id", "actor_label", "action", "object_type", "object_id", "account_id", "ip_address",
        "before", "after",
    )
    for *head, before, after in rows.iterator(chunk_size=CHUNK_SIZE):
        head[1] = iso_utc(head[1])
        yield (*head, _canonical_json(before), _canonical_json(after))


REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        Report("trade_blotter", "Trade blotter",
               "Every trade in time order: fills with both sides (maker and taker orders and accounts), quotes "
               "executed against the firm's inventory and stablecoin conversions, with fees and timestamps.",
               BLOTTER_COLUMNS, _blotter_rows, _blotter_count),
        Report("ledger_journal", "Ledger journal",
               "Every posting of every journal entry, debit and credit, in posting order.",
               JOURNAL_COLUMNS, _journal_rows, lambda s: _postings(s).count()),
        Report("account_statement", "Account statements",
               "Per ledger account and asset: opening balance, postings with running balance, closing balance.",
               STATEMENT_COLUMNS, _statement_rows, _statement_count),
        Report("funding", "Deposits and withdrawals",
               "Deposits and withdrawals requested in the range, with their workflow status and approvers.",
               FUNDING_COLUMNS, _funding_rows, _funding_count),
        Report("large_transactions", "Large transactions",
               "Money in or out of client funds at or above the per-asset threshold (LARGE_TRANSACTION_THRESHOLDS).",
               LARGE_COLUMNS, _large_rows, lambda s: _large_postings(s).count()),
        Report("audit_log", "Audit log", "Every recorded state change: who, when, what, before and after.",
               AUDIT_COLUMNS, _audit_rows, lambda s: _audit(s).count()),
    )
}
