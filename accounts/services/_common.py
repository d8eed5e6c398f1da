"""Helpers the accounts services share: transition checks, the audited save, assets and amounts."""

from __future__ import annotations

from decimal import Decimal

from accounts import outbox
from accounts.errors import AccountNotOperational, AccountsError, Code, InvalidTransition
from accounts.models import ClientAccount, KycStatus
from audit.services import audit_record, audit_values
from ledger import services as ledger
from ledger.errors import InvalidAmount
from ledger.models import Asset, LedgerAccount
from ledger.money import require_exact, to_decimal


def _require_status(obj, allowed, action: str) -> None:
    if obj.status not in allowed:
        noun = obj._meta.verbose_name
        raise InvalidTransition(f"Cannot {action} a {noun} that is {obj.status}.", field="status")


def _save_audited(obj, *, account: ClientAccount, acting_user, action: str, audit_fields: list[str],
                  note: dict | None = None, **changes):
    """Apply ``changes`` to ``obj``, save them, and record the before/after in the audit log."""
    before = audit_values(obj, audit_fields)
    for name, value in changes.items():
        setattr(obj, name, value)
    obj.save(update_fields=[*changes, "updated_at"])
    after = {**audit_values(obj, audit_fields), **(note or {})}
    audit_record(acting_user=acting_user, action=action, obj=obj, account=account, before=before, after=after)
    outbox.state_changed(obj, before_status=before.get("status"))
    return obj


def _asset(asset: str | Asset) -> Asset:
    if isinstance(asset, Asset):
        return asset
    found = Asset.objects.filter(code=asset).first()
    if found is None:
        raise AccountsError(f"Unknown asset {asset!r}.", code=Code.UNKNOWN_ASSET, field="asset")
    return found


def _positive_amount(amount, asset: Asset, *, field: str = "amount") -> Decimal:
    amount = to_decimal(amount, field=field)
    if amount <= 0:
        raise InvalidAmount("The amount must be greater than zero.", code=Code.NOT_POSITIVE, field=field)
    return require_exact(amount, asset.precision, field=field)


def _ledger_account(account: ClientAccount) -> LedgerAccount:
    return ledger.client_ledger_account_create(client=account)


def _require_kyc_approved(account: ClientAccount, *, doing: str = "") -> None:
    if account.kyc_status != KycStatus.APPROVED:
        message = f"{doing} needs an approved KYC review." if doing else "The account's KYC is not approved."
        raise AccountNotOperational(message, code=Code.KYC_NOT_APPROVED)
