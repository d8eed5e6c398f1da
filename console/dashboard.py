"""Read-side queries of the operations console: dashboard figures, trial balance, account statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import OPEN_FUNDING_STATUSES, Withdrawal
from ledger.dates import day_start, utc_date
from ledger.models import Adjustment, AdjustmentStatus, LedgerAccount, Posting, ReconciliationRun
from ledger.selectors import balance_as_of, statement_postings
from trading.models import OPEN_STATUSES, Fill, Market

ZERO = Decimal(0)


@dataclass(frozen=True)
class MarketActivity:
    market: Market
    open_orders: int
    fills_today: int
    base_volume: Decimal
    quote_volume: Decimal


def start_of_today() -> datetime:
    return day_start(utc_date(timezone.now()))


def market_activity(*, since: datetime) -> list[MarketActivity]:
    """Open orders and traded volume since ``since`` for every market."""
    markets = Market.objects.select_related("base", "quote").annotate(
        open_orders=Count("orders", filter=Q(orders__status__in=OPEN_STATUSES))
    )
    volume = {
        row["market_id"]: row
        for row in Fill.objects.filter(created_at__gte=since)
        .values("market_id")
        .annotate(fills=Count("id"), base=Sum("size"), quote=Sum("quote_amount"))
        .order_by()
    }
    return [
        MarketActivity(
            market=m,
            open_orders=m.open_orders,
            fills_today=volume.get(m.pk, {}).get("fills", 0),
            base_volume=volume.get(m.pk, {}).get("base") or ZERO,
            quote_volume=volume.get(m.pk, {}).get("quote") or ZERO,
        )
        for m in markets
    ]


def pending_withdrawals_by_status() -> dict[str, int]:
    rows = Withdrawal.objects.filter(status__in=OPEN_FUNDING_STATUSES).values("status").annotate(n=Count("id"))
    counts = {status: 0 for status in OPEN_FUNDING_STATUSES}
    counts.update({row["status"]: row["n"] for row in rows.order_by()})
    return counts


def adjustments_awaiting_approval(*, limit: int = 10) -> list[Adjustment]:
    return list(
        Adjustment.objects.filter(status=AdjustmentStatus.PROPOSED)
        .select_related("account__client", "proposed_by")
        .order_by("id")[:limit]
    )


def latest_reconciliation() -> ReconciliationRun | None:
    return ReconciliationRun.objects.annotate(break_count=Count("breaks")).order_by("-id").first()


# --- trial balance ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialBalanceLine:
    account: LedgerAccount
    debit: Decimal
    credit: Decimal


@dataclass(frozen=True)
class TrialBalance:
    asset: str
    at: datetime | None
    lines: list[TrialBalanceLine]

    @property
    def total_debit(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit


def trial_balance_for(*, asset: str, at: datetime | None = None) -> TrialBalance:
    """Every ledger account's posted balance in ``asset`` (as of ``at``) on the debit or credit side."""
    postings = Posting.objects.filter(asset_id=asset)
    if at is not None:
        postings = postings.filter(created_at__lte=at)
    totals = {
        row["account_id"]: row["total"]
        for row in postings.values("account_id").annotate(total=Sum("amount")).order_by()
        if row["total"]
    }
    accounts = LedgerAccount.objects.select_related("client").in_bulk(list(totals))
    lines = [
        TrialBalanceLine(accounts[pk], debit=max(total, ZERO), credit=max(-total, ZERO))
        for pk, total in sorted(totals.items())
    ]
    return TrialBalance(asset=asset, at=at, lines=lines)


# --- statement ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    posting: Posting
    amount: Decimal
    balance: Decimal


@dataclass(frozen=True)
class Statement:
    account: LedgerAccount
    asset: str
    start: datetime
    end: datetime
    opening: Decimal
    lines: list[StatementLine]
    truncated: bool

    @property
    def closing(self) -> Decimal:
        return self.lines[-1].balance if self.lines else self.opening


def account_statement(
    *, account: LedgerAccount, asset: str, start: datetime, end: datetime, limit: int = 1000
) -> Statement:
    """Postings of one account and asset in [start, end) with the running natural balance."""
    opening = balance_as_of(account=account, asset=asset, at=start - timedelta(microseconds=1))
    rows = list(
        statement_postings(account=account)
        .filter(asset_id=asset, created_at__gte=start, created_at__lt=end)
        .order_by("created_at", "id")[: limit + 1]
    )
    balance = opening
    lines = []
    for posting in rows[:limit]:
        balance += posting.change
        lines.append(StatementLine(posting, posting.change, balance))
    return Statement(account, asset, start, end, opening, lines, truncated=len(rows) > limit)
