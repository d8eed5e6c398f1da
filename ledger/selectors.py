"""Read-side queries of the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Sum

from ledger.models import NORMAL_SIGN, Balance, Hold, HoldStatus, LedgerAccount, Posting

ZERO = Decimal(0)


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


def balance_as_of(*, account: LedgerAccount, asset: str, at: datetime) -> Decimal:
    """The natural balance including every posting made at or before ``at``."""
    total = Posting.objects.filter(account=account, asset_id=asset, created_at__lte=at).aggregate(
        total=Sum("amount")
    )["total"]
    return (total or ZERO) * account.normal_sign


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


def balance_drift() -> list[Drift]:
    """Compare every balance row with the postings and holds it summarises; an empty list means no drift."""
    signs = dict(LedgerAccount.objects.values_list("id", "type"))
    posted = {
        (r["account_id"], r["asset_id"]): r["total"] * NORMAL_SIGN[signs[r["account_id"]]]
        for r in Posting.objects.values("account_id", "asset_id").annotate(total=Sum("amount")).order_by()
    }
    held = {
        (r["account_id"], r["asset_id"]): r["total"]
        for r in Hold.objects.filter(status=HoldStatus.ACTIVE)
        .values("account_id", "asset_id")
        .annotate(total=Sum("remaining"))
        .order_by()
    }
    stored = {(b.account_id, b.asset_id): b for b in Balance.objects.all()}
    drifts = []
    for k in sorted(set(posted) | set(held) | set(stored)):
        row = stored.get(k)
        stored_amount, stored_held = (row.amount, row.held) if row else (ZERO, ZERO)
        if stored_amount != posted.get(k, ZERO):
            drifts.append(Drift(k[0], k[1], "amount", stored_amount, posted.get(k, ZERO)))
        if stored_held != held.get(k, ZERO):
            drifts.append(Drift(k[0], k[1], "held", stored_held, held.get(k, ZERO)))
    return drifts
