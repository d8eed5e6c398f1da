"""Read-side queries of the ledger."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import F, QuerySet, Sum, Value

from ledger.dates import day_end, utc_date
from ledger.models import NORMAL_SIGN, Asset, Balance, BalanceSnapshot, Hold, HoldStatus, LedgerAccount, Posting
from ledger.money import at_precision

ZERO = Decimal(0)


def natural_sign_sql(type_column: str) -> str:
    """SQL for an account's normal sign (+1 or -1) from its ``type`` column, built from ``NORMAL_SIGN``."""
    positive = ", ".join(f"'{t}'" for t, sign in NORMAL_SIGN.items() if sign > 0)
    return f"(CASE WHEN {type_column} IN ({positive}) THEN 1 ELSE -1 END)"


@dataclass(frozen=True)
class BalanceView:
    asset: str
    total: Decimal
    held: Decimal

    @property
    def available(self) -> Decimal:
        return self.total - self.held


def balance_get(*, account: LedgerAccount, asset: str) -> BalanceView:
    row = Balance.objects.filter(account=account, asset_id=asset).first()
    if row is None:
        return BalanceView(asset, ZERO, ZERO)
    return BalanceView(asset, row.amount, row.held)


def balances_list(*, account: LedgerAccount) -> list[BalanceView]:
    return [BalanceView(b.asset_id, b.amount, b.held) for b in Balance.objects.filter(account=account)]


def nonzero_balances(*, account: LedgerAccount) -> list[BalanceView]:
    """Balances with anything owed or held: what stops an account from being closed."""
    rows = Balance.objects.filter(account=account).exclude(amount=0, held=0)
    return [BalanceView(b.asset_id, b.amount, b.held) for b in rows]


def active_holds(*, account: LedgerAccount) -> QuerySet[Hold]:
    """What the account has reserved: one active hold per open order or pending withdrawal."""
    return Hold.objects.filter(account=account, status=HoldStatus.ACTIVE)


def statement_postings(*, account: LedgerAccount) -> QuerySet[Posting]:
    """The postings of one ledger account, each with ``change``: the posting in the account's natural sign
    (for a client: positive when the firm owes the client more)."""
    return (
        Posting.objects.filter(account=account)
        .select_related("entry", "asset")
        .annotate(change=F("amount") * Value(account.normal_sign))
    )


def balance_as_of(*, account: LedgerAccount, asset: str, at: datetime) -> Decimal:
    """The natural balance including every posting made at or before ``at``.

    Starts from the latest end-of-day snapshot that ``at`` lies after and adds the later postings. Postings
    are selected by ``created_at``, not by id: ids are not in time order across concurrent transactions.
    """
    postings = Posting.objects.filter(account=account, asset_id=asset, created_at__lte=at)
    snapshot = (
        BalanceSnapshot.objects.filter(account=account, asset_id=asset, day__lt=utc_date(at)).order_by("-day").first()
    )
    opening = ZERO
    if snapshot is not None:
        opening = snapshot.amount
        postings = postings.filter(created_at__gte=day_end(snapshot.day))
    total = postings.aggregate(total=Sum("amount"))["total"]
    return opening + (total or ZERO) * account.normal_sign


def trial_balance() -> dict[str, Decimal]:
    """Sum of all postings per asset: zero for every asset when debits equal credits."""
    rows = Posting.objects.values("asset_id").annotate(total=Sum("amount")).order_by("asset_id")
    return {row["asset_id"]: row["total"] for row in rows}


@dataclass(frozen=True)
class Drift:
    account_id: int
    asset: str
    field: str
    stored: Decimal
    recomputed: Decimal


BALANCE_DRIFT_SQL = """
WITH posted AS (
    SELECT account_id, asset_id, SUM(amount) AS total FROM ledger_posting GROUP BY account_id, asset_id
), held AS (
    SELECT account_id, asset_id, SUM(remaining) AS total FROM ledger_hold
     WHERE status = %s GROUP BY account_id, asset_id
), pairs AS (
    SELECT account_id, asset_id FROM posted
    UNION SELECT account_id, asset_id FROM held
    UNION SELECT account_id, asset_id FROM ledger_balance
), compared AS (
    SELECT pairs.account_id, pairs.asset_id,
           COALESCE(b.amount, 0) AS stored_amount,
           COALESCE(posted.total, 0) * {sign} AS posted_amount,
           COALESCE(b.held, 0) AS stored_held,
           COALESCE(held.total, 0) AS held_amount
      FROM pairs
      JOIN ledger_ledgeraccount a ON a.id = pairs.account_id
      LEFT JOIN ledger_balance b ON b.account_id = pairs.account_id AND b.asset_id = pairs.asset_id
      LEFT JOIN posted ON posted.account_id = pairs.account_id AND posted.asset_id = pairs.asset_id
      LEFT JOIN held ON held.account_id = pairs.account_id AND held.asset_id = pairs.asset_id
)
SELECT account_id, asset_id, stored_amount, posted_amount, stored_held, held_amount FROM compared
 WHERE stored_amount <> posted_amount OR stored_held <> held_amount
 ORDER BY account_id, asset_id
 LIMIT %s
""".format(sign=natural_sign_sql("a.type"))


def balance_drift(*, limit: int = 10_000) -> list[Drift]:
    """Compare every balance row with the postings and holds it summarises; an empty list means no drift.

    One SQL statement (so one consistent snapshot of the tables) that returns only the rows that differ.
    """
    with connection.cursor() as cursor:
        cursor.execute(BALANCE_DRIFT_SQL, [HoldStatus.ACTIVE, limit])
        rows = cursor.fetchall()
    drifts = []
    for account_id, asset, stored_amount, posted_amount, stored_held, held_amount in rows:
        if Decimal(stored_amount) != Decimal(posted_amount):
            drifts.append(Drift(account_id, asset, "amount", Decimal(stored_amount), Decimal(posted_amount)))
        if Decimal(stored_held) != Decimal(held_amount):
            drifts.append(Drift(account_id, asset, "held", Decimal(stored_held), Decimal(held_amount)))
    return drifts


_precisions: dict[str, int] = {}


def asset_precisions(codes: Iterable[str] = ()) -> dict[str, int]:
    """Decimal places per asset code. Reference data, so cached in the process (a posting path should not
    read it every time); asking for a code the cache lacks reloads it. Precision never changes once set."""
    if not _precisions or not set(codes) <= _precisions.keys():
        _precisions.clear()
        _precisions.update(Asset.objects.values_list("code", "precision"))
    return _precisions


def amount_text(amount: Decimal, asset: str) -> str:
    """An amount in a message as the API shows amounts: at the asset's precision."""
    return at_precision(amount, asset_precisions([asset])[asset])
