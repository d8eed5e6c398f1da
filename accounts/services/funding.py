"""Funding: deposits credited on completion, withdrawals held on request, approved under four eyes above a
threshold and within a daily limit, then captured on completion or released on rejection and cancellation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import outbox, selectors
from accounts.errors import AccountNotOperational, AccountsError, Code, FourEyesViolation, LimitExceeded
from accounts.models import (
    OPEN_FUNDING_STATUSES,
    AccountStatus,
    AssetLimit,
    ClientAccount,
    Deposit,
    FundingStatus,
    Membership,
    Withdrawal,
)
from accounts.services._common import (
    _asset,
    _ledger_account,
    _positive_amount,
    _require_kyc_approved,
    _require_status,
    _save_audited,
)
from accounts.services.lifecycle import account_require_active
from accounts.services.withdrawal_controls import (
    destination_of,
    withdrawal_destination_require,
    withdrawal_four_eyes_due,
)
from audit.services import audit_record, audit_values, user_or_none
from core.db import row_locked
from ledger import services as ledger
from ledger.errors import IdempotencyConflict
from ledger.models import Asset, Purpose

DAILY_WINDOW = timedelta(hours=24)


# --- funding: deposits --------------------------------------------------------------------------------------

FUNDING_AUDIT_FIELDS = [
    "asset", "amount", "status", "blockchain_address", "tx_hash", "bank_reference", "reason",
    "requested_by", "approved_by", "entry",
]
WITHDRAWAL_AUDIT_FIELDS = [*FUNDING_AUDIT_FIELDS, "hold", "requires_four_eyes", "second_approved_by"]
DEPOSIT_AUDIT_FIELDS = [*FUNDING_AUDIT_FIELDS, "completed_by"]


def _funding_replay(model, *, account: ClientAccount, idempotency_key: str | None, **content):
    """The request already made under this key (same content), or None; other content is a conflict."""
    if not idempotency_key:
        return None
    existing = model.objects.filter(account=account, idempotency_key=idempotency_key).first()
    if existing is None:
        return None
    if any(getattr(existing, name) != value for name, value in content.items()):
        raise IdempotencyConflict(
            f"Idempotency key {idempotency_key!r} was already used for a different request.",
            field="idempotency_key",
        )
    return existing


def _idempotency_key(value: str | None, *, required: bool) -> str | None:
    if not value:
        if required:
            raise AccountsError("An idempotency key is required.", code=Code.IDEMPOTENCY_KEY_REQUIRED,
                                field="idempotency_key")
        return None
    if len(value) > 200:
        raise AccountsError("An idempotency key has at most 200 characters.", code=Code.INVALID_IDEMPOTENCY_KEY,
                            field="idempotency_key")
    return value


def _require_deposit_reference(asset: Asset, *, blockchain_address: str, tx_hash: str, bank_reference: str) -> None:
    """A deposit names the transfer it stands for, so operations can match it to the bank or the chain."""
    if asset.is_fiat and not bank_reference:
        raise AccountsError(f"A {asset.code} deposit needs the bank reference of the transfer.",
                            code=Code.REFERENCE_REQUIRED, field="bank_reference")
    if not asset.is_fiat and not (tx_hash or blockchain_address):
        raise AccountsError(f"A {asset.code} deposit needs a transaction hash or the address it was sent to.",
                            code=Code.REFERENCE_REQUIRED, field="tx_hash")


def _is_member(user, account: ClientAccount) -> bool:
    return user is not None and Membership.objects.filter(user=user, account=account).exists()


def _require_notice_within_bounds(asset: Asset, amount: Decimal) -> None:
    """A client's deposit notice is at most ``settings.DEPOSIT_NOTICE_MAX_AMOUNTS`` of its asset."""
    maximum = settings.DEPOSIT_NOTICE_MAX_AMOUNTS.get(asset.code)
    if maximum is None or amount > maximum:
        limit = "not accepted" if maximum is None else f"at most {maximum.normalize():f} {asset.code}"
        raise AccountsError(f"A deposit notice of {asset.code} is {limit}; contact operations.",
                            code=Code.DEPOSIT_NOTICE_TOO_LARGE, field="amount")


@transaction.atomic
def deposit_request(*, account: ClientAccount, asset: str | Asset, amount, acting_user,
                    idempotency_key: str | None = None, blockchain_address: str = "", tx_hash: str = "",
                    bank_reference: str = "") -> Deposit:
    """Record that a client is sending funds. Nothing is credited until operations complete it.

    The deposit names its transfer (bank reference; transaction hash or address). A notice filed by a user of
    the client account is bounded per asset (``settings.DEPOSIT_NOTICE_MAX_AMOUNTS``)."""
    account = row_locked(account)
    asset = _asset(asset)
    amount = _positive_amount(amount, asset)
    idempotency_key = _idempotency_key(idempotency_key, required=False)
    content = {"asset_id": asset.code, "amount": amount, "blockchain_address": blockchain_address,
               "tx_hash": tx_hash, "bank_reference": bank_reference}
    existing = _funding_replay(Deposit, account=account, idempotency_key=idempotency_key, **content)
    if existing is not None:
        return existing
    if account.status not in (AccountStatus.ACTIVE, AccountStatus.FROZEN):
        account_require_active(account=account)
    _require_deposit_reference(asset, blockchain_address=blockchain_address, tx_hash=tx_hash,
                               bank_reference=bank_reference)
    requester = user_or_none(acting_user)
    if _is_member(requester, account):
        _require_notice_within_bounds(asset, amount)
    deposit = Deposit.objects.create(account=account, idempotency_key=idempotency_key, requested_by=requester,
                                     **content)
    audit_record(acting_user=acting_user, action="deposit.request", obj=deposit, account=account,
                 after=audit_values(deposit, DEPOSIT_AUDIT_FIELDS))
    outbox.state_changed(deposit, before_status=None)
    return deposit


def _firm_user(acting_user, deposit: Deposit, action: str):
    """The named user of the firm deciding on ``deposit``: never nobody, never a user of the client account."""
    user = user_or_none(acting_user)
    if user is None:
        raise FourEyesViolation(f"To {action} a deposit needs a named user.", code=Code.APPROVER_REQUIRED)
    if _is_member(user, deposit.account):
        raise FourEyesViolation(f"Users of the client account cannot {action} its deposits.",
                                code=Code.SELF_APPROVAL)
    return user


@transaction.atomic
def deposit_approve(*, deposit: Deposit, acting_user) -> Deposit:
    """Approve as operations: never by the requester (``self_approval``) nor a user of the client account."""
    deposit = row_locked(deposit)
    if deposit.status == FundingStatus.APPROVED:
        return deposit
    _require_status(deposit, {FundingStatus.REQUESTED}, "approve")
    approver = _firm_user(acting_user, deposit, "approve")
    if approver.pk == deposit.requested_by_id:
        raise FourEyesViolation("The requester of a deposit cannot approve it.", code=Code.SELF_APPROVAL)
    return _save_audited(deposit, account=deposit.account, acting_user=acting_user, action="deposit.approve",
                         audit_fields=DEPOSIT_AUDIT_FIELDS, status=FundingStatus.APPROVED, approved_by=approver)


@transaction.atomic
def deposit_complete(*, deposit: Deposit, acting_user, tx_hash: str | None = None) -> Deposit:
    """The funds have arrived: debit custody, credit the client (entry ``deposit:<id>``). By someone other than
    the approver (``second_person_required``): with the approver never the requester, two people of the firm
    always stand behind a credit."""
    deposit = row_locked(deposit)
    if deposit.status == FundingStatus.COMPLETED:
        return deposit
    _require_status(deposit, {FundingStatus.APPROVED}, "complete")
    completer = _firm_user(acting_user, deposit, "complete")
    if completer.pk == deposit.approved_by_id:
        raise FourEyesViolation("A deposit is completed by someone other than its approver.",
                                code=Code.SECOND_PERSON_REQUIRED)
    entry = ledger.entry_post(
        key=f"deposit:{deposit.pk}",
        kind="deposit",
        legs=[
            ledger.debit(ledger.firm_account(Purpose.CUSTODY), deposit.asset_id, deposit.amount),
            ledger.credit(_ledger_account(deposit.account), deposit.asset_id, deposit.amount),
        ],
        memo=f"Deposit #{deposit.pk}",
        acting_user=completer,
    )
    changes = {"status": FundingStatus.COMPLETED, "entry": entry, "completed_by": completer}
    if tx_hash:
        changes["tx_hash"] = tx_hash
    return _save_audited(deposit, account=deposit.account, acting_user=acting_user, action="deposit.complete",
                         audit_fields=DEPOSIT_AUDIT_FIELDS, **changes)


@transaction.atomic
def deposit_reject(*, deposit: Deposit, acting_user, reason: str = "") -> Deposit:
    deposit = row_locked(deposit)
    if deposit.status == FundingStatus.REJECTED:
        return deposit
    _require_status(deposit, OPEN_FUNDING_STATUSES, "reject")
    return _save_audited(deposit, account=deposit.account, acting_user=acting_user, action="deposit.reject",
                         audit_fields=DEPOSIT_AUDIT_FIELDS, status=FundingStatus.REJECTED, reason=reason)


# --- funding: withdrawals -----------------------------------------------------------------------------------


def _require_can_withdraw(account: ClientAccount) -> None:
    account_require_active(account=account)
    _require_kyc_approved(account)
    if not account.can_withdraw:
        raise AccountNotOperational("Withdrawals are disabled for this account.", code=Code.WITHDRAWALS_DISABLED)


def _require_destination(asset: Asset, *, blockchain_address: str, bank_reference: str) -> None:
    if asset.is_fiat and not bank_reference:
        raise AccountsError(f"A {asset.code} withdrawal needs a bank reference.", code=Code.DESTINATION_REQUIRED,
                            field="bank_reference")
    if not asset.is_fiat and not blockchain_address:
        raise AccountsError(f"A {asset.code} withdrawal needs a blockchain address.", code=Code.DESTINATION_REQUIRED,
                            field="blockchain_address")


def _require_within_daily_limit(account: ClientAccount, asset: Asset, amount: Decimal) -> None:
    """Withdrawals not rejected or cancelled in the last 24 hours (rolling), plus this one, stay within the
    account's daily limit for the asset. The caller holds the account's row lock, so two requests cannot both
    squeeze under the limit."""
    limit = (
        AssetLimit.objects.filter(account=account, asset=asset)
        .values_list("daily_withdrawal_limit", flat=True)
        .first()
    )
    if limit is None:
        return
    used = selectors.withdrawn_since(account=account, asset=asset, since=timezone.now() - DAILY_WINDOW)
    if used + amount > limit:
        raise LimitExceeded(
            f"This withdrawal would exceed the daily {asset.code} limit of {limit.normalize()}: "
            f"{used.normalize()} already used in the last 24 hours.",
            field="amount",
        )


@transaction.atomic
def withdrawal_request(*, account: ClientAccount, asset: str | Asset, amount, idempotency_key: str, acting_user,
                       blockchain_address: str = "", bank_reference: str = "") -> Withdrawal:
    """Ask to send funds out: the amount is held at once (hold ``withdrawal:<id>``) with the request row.

    Replaying ``idempotency_key`` with the same content returns the original request; other content: 409.
    """
    account = row_locked(account)
    asset = _asset(asset)
    amount = _positive_amount(amount, asset)
    idempotency_key = _idempotency_key(idempotency_key, required=True)
    content = {"asset_id": asset.code, "amount": amount, "blockchain_address": blockchain_address,
               "bank_reference": bank_reference}
    existing = _funding_replay(Withdrawal, account=account, idempotency_key=idempotency_key, **content)
    if existing is not None:
        return existing
    _require_can_withdraw(account)
    _require_destination(asset, blockchain_address=blockchain_address, bank_reference=bank_reference)
    destination = destination_of(asset, blockchain_address=blockchain_address, bank_reference=bank_reference)
    withdrawal_destination_require(account=account, asset=asset, destination=destination)
    _require_within_daily_limit(account, asset, amount)
    withdrawal = Withdrawal.objects.create(
        account=account, idempotency_key=idempotency_key, requested_by=user_or_none(acting_user),
        requires_four_eyes=withdrawal_four_eyes_due(account=account, asset=asset, destination=destination,
                                                    amount=amount),
        **content,
    )
    withdrawal.hold = ledger.hold_place(key=f"withdrawal:{withdrawal.pk}", account=_ledger_account(account),
                                        asset=asset, amount=amount, reason=f"Withdrawal #{withdrawal.pk}")
    withdrawal.save(update_fields=["hold"])
    audit_record(acting_user=acting_user, action="withdrawal.request", obj=withdrawal, account=account,
                 after=audit_values(withdrawal, WITHDRAWAL_AUDIT_FIELDS))
    outbox.state_changed(withdrawal, before_status=None)
    return withdrawal


@transaction.atomic
def withdrawal_approve(*, withdrawal: Withdrawal, acting_user) -> Withdrawal:
    """Approve as operations. Never by the requester nor by a user of the client account; above the four-eyes
    threshold the first approval leaves it ``requested`` and a second, different approver makes it ``approved``.
    Approving an approved withdrawal again (a replay by one of its approvers) changes nothing."""
    withdrawal = row_locked(withdrawal)
    approver = user_or_none(acting_user)
    if approver is None:
        raise FourEyesViolation("Approving a withdrawal needs a named user.", code=Code.APPROVER_REQUIRED)
    if withdrawal.status == FundingStatus.APPROVED and approver.pk in (
        withdrawal.approved_by_id, withdrawal.second_approved_by_id
    ):
        return withdrawal
    _require_status(withdrawal, {FundingStatus.REQUESTED}, "approve")
    if approver.pk == withdrawal.approved_by_id:
        raise FourEyesViolation("This withdrawal needs a second approval by a different user.",
                                code=Code.SECOND_APPROVER_REQUIRED)
    if approver.pk == withdrawal.requested_by_id:
        raise FourEyesViolation("The requester of a withdrawal cannot approve it.", code=Code.SELF_APPROVAL)
    if Membership.objects.filter(user=approver, account=withdrawal.account).exists():
        raise FourEyesViolation("Users of the client account cannot approve its withdrawals.",
                                code=Code.SELF_APPROVAL)
    _require_can_withdraw(withdrawal.account)
    if withdrawal.requires_four_eyes and withdrawal.approved_by_id is None:
        return _save_audited(withdrawal, account=withdrawal.account, acting_user=acting_user,
                             action="withdrawal.approve_first", audit_fields=WITHDRAWAL_AUDIT_FIELDS,
                             approved_by=approver)
    changes = {"status": FundingStatus.APPROVED}
    changes["second_approved_by" if withdrawal.requires_four_eyes else "approved_by"] = approver
    return _save_audited(withdrawal, account=withdrawal.account, acting_user=acting_user,
                         action="withdrawal.approve", audit_fields=WITHDRAWAL_AUDIT_FIELDS, **changes)


@transaction.atomic
def withdrawal_complete(*, withdrawal: Withdrawal, acting_user, tx_hash: str | None = None) -> Withdrawal:
    """The funds were sent: capture the hold in entry ``withdrawal:<id>`` (debit client, credit custody)."""
    withdrawal = row_locked(withdrawal)
    if withdrawal.status == FundingStatus.COMPLETED:
        return withdrawal
    _require_status(withdrawal, {FundingStatus.APPROVED}, "complete")
    account_require_active(account=withdrawal.account)
    entry = ledger.entry_post(
        key=f"withdrawal:{withdrawal.pk}",
        kind="withdrawal",
        legs=[
            ledger.debit(_ledger_account(withdrawal.account), withdrawal.asset_id, withdrawal.amount),
            ledger.credit(ledger.firm_account(Purpose.CUSTODY), withdrawal.asset_id, withdrawal.amount),
        ],
        captures=[ledger.Capture(withdrawal.hold, withdrawal.amount)],
        memo=f"Withdrawal #{withdrawal.pk}",
        acting_user=user_or_none(acting_user),
    )
    changes = {"status": FundingStatus.COMPLETED, "entry": entry}
    if tx_hash:
        changes["tx_hash"] = tx_hash
    return _save_audited(withdrawal, account=withdrawal.account, acting_user=acting_user,
                         action="withdrawal.complete", audit_fields=WITHDRAWAL_AUDIT_FIELDS, **changes)


def _withdrawal_end(*, withdrawal: Withdrawal, to: str, allowed_from, action: str, acting_user,
                    reason: str) -> Withdrawal:
    """Reject or cancel: the hold goes back to the client's available balance."""
    withdrawal = row_locked(withdrawal)
    if withdrawal.status == to:
        return withdrawal
    _require_status(withdrawal, allowed_from, action)
    ledger.holds_release(holds=[withdrawal.hold])
    return _save_audited(withdrawal, account=withdrawal.account, acting_user=acting_user,
                         action=f"withdrawal.{action}", audit_fields=WITHDRAWAL_AUDIT_FIELDS, status=to,
                         reason=reason)


@transaction.atomic
def withdrawal_reject(*, withdrawal: Withdrawal, acting_user, reason: str = "") -> Withdrawal:
    return _withdrawal_end(withdrawal=withdrawal, to=FundingStatus.REJECTED, allowed_from=OPEN_FUNDING_STATUSES,
                           action="reject", acting_user=acting_user, reason=reason)


@transaction.atomic
def withdrawal_cancel(*, withdrawal: Withdrawal, acting_user, reason: str = "") -> Withdrawal:
    """The client takes back a request operations have not approved yet."""
    return _withdrawal_end(withdrawal=withdrawal, to=FundingStatus.CANCELLED, allowed_from={FundingStatus.REQUESTED},
                           action="cancel", acting_user=acting_user, reason=reason)
