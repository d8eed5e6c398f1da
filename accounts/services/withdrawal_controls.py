"""Withdrawal controls. The address book: where an account may send each asset, and when.

A withdrawal goes only to a destination on its account's list for that asset (a blockchain address, or a bank
reference for fiat), and only once the destination's cool-off (``settings.WITHDRAWAL_DESTINATION_COOL_OFF``,
24 hours by default) has passed since it was added: a stolen admin credential cannot add an address and empty
the account in the same hour, and the account's users have a day to notice and remove it. Only an account admin
(API) or operations (console) manage the list; every change is audited.

Four-eyes on withdrawals counts what went the same way in the last 24 hours (rolling): the withdrawal plus the
account's other withdrawals of the asset, or plus every account's withdrawals of the asset to the same
destination, whichever is larger, is checked against the asset's threshold. Splitting 27,000 USD into three
9,000 USD requests needs two approvers from the second one on.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import selectors
from accounts.errors import AccountsError, Code
from accounts.models import ClientAccount, Membership, Role, WithdrawalDestination
from accounts.services._common import _asset
from audit.services import audit_record, audit_values, user_or_none
from core.db import row_locked
from core.exceptions import Code as CoreCode
from core.exceptions import Forbidden
from ledger.models import Asset

DESTINATION_AUDIT_FIELDS = ["asset", "address", "label", "usable_from", "added_by", "removed_at", "removed_by"]


def destination_of(asset: Asset, *, blockchain_address: str, bank_reference: str) -> str:
    """Where a withdrawal of ``asset`` goes: its bank reference for fiat, its blockchain address otherwise."""
    return bank_reference if asset.is_fiat else blockchain_address


def _require_may_manage(acting_user, account: ClientAccount) -> None:
    """Users of the account need the admin role; a user of another client account may not; staff may (the
    console checks their permission)."""
    user = user_or_none(acting_user)
    if user is None:
        return
    membership = Membership.objects.filter(user=user).first()
    if membership is None:
        return
    if membership.account_id != account.pk or membership.role != Role.ADMIN:
        raise Forbidden("Only an admin of the account can change its withdrawal address book.",
                        code=Code.ACCOUNT_ADMIN_REQUIRED)


def _clean_address(address: str) -> str:
    address = (address or "").strip()
    if not address:
        raise AccountsError("An address (or bank reference) is required.", code=CoreCode.REQUIRED, field="address")
    if len(address) > 128 or not address.isprintable():
        raise AccountsError("An address has 1 to 128 printable characters.", code=CoreCode.INVALID,
                            field="address")
    return address


@transaction.atomic
def withdrawal_destination_add(*, account: ClientAccount, asset: str | Asset, address: str, label: str = "",
                               acting_user) -> WithdrawalDestination:
    """Put ``address`` on the account's list for ``asset``; usable after the cool-off. Adding a listed address
    again returns the entry unchanged (its cool-off is not restarted, nor shortened)."""
    account = row_locked(account)
    _require_may_manage(acting_user, account)
    asset = _asset(asset)
    address = _clean_address(address)
    existing = WithdrawalDestination.objects.filter(account=account, asset=asset, address=address,
                                                    removed_at__isnull=True).first()
    if existing is not None:
        return existing
    destination = WithdrawalDestination.objects.create(
        account=account, asset=asset, address=address, label=(label or "")[:100],
        usable_from=timezone.now() + settings.WITHDRAWAL_DESTINATION_COOL_OFF, added_by=user_or_none(acting_user),
    )
    audit_record(acting_user=acting_user, action="withdrawal_destination.add", obj=destination, account=account,
                 after=audit_values(destination, DESTINATION_AUDIT_FIELDS))
    return destination


@transaction.atomic
def withdrawal_destination_remove(*, destination: WithdrawalDestination, acting_user) -> WithdrawalDestination:
    """Take a destination off the list at once (withdrawals already requested to it are not affected)."""
    destination = row_locked(destination)
    _require_may_manage(acting_user, destination.account)
    if destination.removed_at is not None:
        return destination
    before = audit_values(destination, DESTINATION_AUDIT_FIELDS)
    destination.removed_at = timezone.now()
    destination.removed_by = user_or_none(acting_user)
    destination.save(update_fields=["removed_at", "removed_by"])
    audit_record(acting_user=acting_user, action="withdrawal_destination.remove", obj=destination,
                 account=destination.account, before=before,
                 after=audit_values(destination, DESTINATION_AUDIT_FIELDS))
    return destination


def withdrawal_destination_require(*, account: ClientAccount, asset: Asset, destination: str) -> None:
    """Refuse a withdrawal to a destination not on the account's list (``destination_not_allowed``) or still in
    its cool-off (``destination_cooling_off``)."""
    entry = WithdrawalDestination.objects.filter(account=account, asset=asset, address=destination,
                                                 removed_at__isnull=True).first()
    field = "bank_reference" if asset.is_fiat else "blockchain_address"
    if entry is None:
        raise Forbidden(f"{destination!r} is not in this account's withdrawal address book for {asset.code}.",
                        code=Code.DESTINATION_NOT_ALLOWED, field=field)
    if entry.usable_from > timezone.now():
        raise Forbidden(f"{destination!r} was added to the address book recently: it can be used from "
                        f"{entry.usable_from.isoformat()}.", code=Code.DESTINATION_COOLING_OFF, field=field)


def withdrawal_needs_four_eyes(*, asset: str, amount: Decimal) -> bool:
    """Above the asset's threshold (settings.WITHDRAWAL_FOUR_EYES_THRESHOLDS, in the asset's own units) two
    approvers are needed; an asset without a threshold always needs two."""
    threshold = settings.WITHDRAWAL_FOUR_EYES_THRESHOLDS.get(asset)
    return threshold is None or amount > threshold


def withdrawal_four_eyes_due(*, account: ClientAccount, asset: Asset, destination: str, amount: Decimal) -> bool:
    """Two approvers when this withdrawal, plus what the account withdrew of the asset or what went to this
    destination from any account in the rolling window, exceeds the asset's threshold (``None``: always)."""
    since = timezone.now() - settings.WITHDRAWAL_FOUR_EYES_WINDOW
    already = max(selectors.withdrawn_since(account=account, asset=asset, since=since),
                  selectors.withdrawn_to_since(asset=asset, destination=destination, since=since))
    return withdrawal_needs_four_eyes(asset=asset.code, amount=already + amount)
