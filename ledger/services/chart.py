"""The chart of accounts: the firm's accounts, one liability account per client, reference data, credit limits."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction

from ledger import sql
from ledger.errors import InvalidAmount
from ledger.models import AccountType, Asset, Balance, LedgerAccount, Purpose
from ledger.reference import ASSETS, FIRM_ACCOUNTS
from ledger.services.posting import _code


def firm_account(purpose: str) -> LedgerAccount:
    """The firm's ledger account for a purpose (custody, fees, ...), created on first use."""
    code, name, account_type = FIRM_ACCOUNTS[purpose]
    account, _ = LedgerAccount.objects.get_or_create(
        code=code, defaults={"name": name, "type": account_type, "purpose": purpose}
    )
    return account


def client_and_firm_accounts(client_ids: Iterable[int], purpose: str) -> tuple[dict[int, LedgerAccount], LedgerAccount]:
    """The ledger accounts of these client accounts by client id, and the firm's account for ``purpose``
    (``firm_account``), in one read once the firm's account exists."""
    code = FIRM_ACCOUNTS[purpose][0]
    found = sql.ledger_accounts_of(client_ids, code)
    firm = next((account for account in found if account.code == code), None) or firm_account(purpose)
    return {account.client_id: account for account in found if account.client_id is not None}, firm


def client_ledger_account_create(*, client) -> LedgerAccount:
    """What the firm owes a client: a liability account, one per client account, balances per asset."""
    account, _ = LedgerAccount.objects.get_or_create(
        client=client,
        defaults={
            "code": f"client:{client.pk}",
            "name": f"Client {client.pk} funds",
            "type": AccountType.LIABILITY,
            "purpose": Purpose.CLIENT,
        },
    )
    return account


def reference_data_ensure() -> None:
    """Create the assets and firm accounts if missing (they are seeded by migration 0003 as well)."""
    for code, name, precision, is_fiat in ASSETS:
        Asset.objects.get_or_create(code=code, defaults={"name": name, "precision": precision, "is_fiat": is_fiat})
    for purpose in FIRM_ACCOUNTS:
        firm_account(purpose)


@transaction.atomic
def credit_limit_set(*, account: LedgerAccount, asset: str | Asset, limit: Decimal) -> Balance:
    if limit < 0:
        raise InvalidAmount("A credit limit cannot be negative.", field="limit")
    balance = sql.balances_lock([(account.pk, _code(asset))])[(account.pk, _code(asset))]
    balance.credit_limit = limit
    balance.save(update_fields=["credit_limit", "updated_at"])
    return balance
