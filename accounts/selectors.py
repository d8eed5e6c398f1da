"""Read-side queries of the accounts domain. Client-facing lists are always scoped to one account."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet, Sum

from accounts.models import (
    ApiKey,
    ClientAccount,
    Deposit,
    FundingStatus,
    Membership,
    Role,
    Withdrawal,
    WithdrawalDestination,
)
from ledger.models import Asset

ZERO = Decimal(0)


def withdrawn_since(*, account: ClientAccount, asset: Asset, since: datetime) -> Decimal:
    """What counts against a daily limit: withdrawals requested since ``since`` that were not given back."""
    total = (
        Withdrawal.objects.filter(account=account, asset=asset, created_at__gte=since)
        .exclude(status__in=[FundingStatus.REJECTED, FundingStatus.CANCELLED])
        .aggregate(total=Sum("amount"))["total"]
    )
    return total or ZERO


def withdrawn_to_since(*, asset: Asset, destination: str, since: datetime) -> Decimal:
    """What every account requested to send to ``destination`` since ``since`` and was not given back."""
    field = "bank_reference" if asset.is_fiat else "blockchain_address"
    total = (
        Withdrawal.objects.filter(asset=asset, created_at__gte=since, **{field: destination})
        .exclude(status__in=[FundingStatus.REJECTED, FundingStatus.CANCELLED])
        .aggregate(total=Sum("amount"))["total"]
    )
    return total or ZERO


def withdrawal_destinations_of(*, account: ClientAccount) -> QuerySet[WithdrawalDestination]:
    """The account's address book: entries still listed, newest first."""
    return WithdrawalDestination.objects.filter(account=account, removed_at__isnull=True).select_related("asset")


def deposits_of(*, account: ClientAccount) -> QuerySet[Deposit]:
    return Deposit.objects.filter(account=account).select_related("asset")


def withdrawals_of(*, account: ClientAccount) -> QuerySet[Withdrawal]:
    return Withdrawal.objects.filter(account=account).select_related("asset")


def api_keys_visible_to(*, user, account: ClientAccount) -> QuerySet[ApiKey]:
    """An account admin sees every key of the account; other users see their own."""
    keys = ApiKey.objects.filter(account=account).select_related("user")
    if Membership.objects.filter(user=user, account=account, role=Role.ADMIN).exists():
        return keys
    return keys.filter(user=user)


def member_user_ids(*, account: ClientAccount) -> set[int]:
    return set(Membership.objects.filter(account=account).values_list("user_id", flat=True))
