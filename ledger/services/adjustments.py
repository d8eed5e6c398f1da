"""Manual adjustments of client balances under maker-checker: one user proposes, another approves or rejects.

A positive amount credits the client and debits firm equity; a negative one debits the client and credits firm
equity. Equity rather than suspense: an approved adjustment is a decided outcome the firm bears (a goodwill credit,
a fee refund, a correction), while suspense holds unexplained breaks that are still being investigated.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record, audit_values
from core.exceptions import Code as CoreCode
from core.exceptions import Conflict, Forbidden
from events.services import event_record
from events.types import EventType
from ledger.errors import Code, InvalidAmount, LedgerError
from ledger.models import Adjustment, AdjustmentStatus, Asset, LedgerAccount, Purpose
from ledger.money import require_exact
from ledger.representations import adjustment_data
from ledger.selectors import asset_precisions
from ledger.services.chart import firm_account
from ledger.services.posting import _code, credit, debit, entry_post


def _require_staff_permission(acting_user, perm: str, doing: str) -> None:
    if acting_user is None or not acting_user.has_perm(perm):
        raise Forbidden(f"You do not have permission to {doing}.", code=CoreCode.PERMISSION_DENIED)


def _require_four_eyes(adjustment: Adjustment, acting_user) -> None:
    if adjustment.proposed_by_id == acting_user.pk:
        raise Forbidden(
            "Four-eyes rule: the proposer of an adjustment cannot approve or reject it.", code=Code.FOUR_EYES
        )


def _adjustment_audit(adjustment: Adjustment, *, action: str, acting_user, before=None, extra=None) -> None:
    after = audit_values(adjustment, ["account", "asset", "amount", "reason", "status", "decided_by", "entry"])
    audit_record(
        acting_user=acting_user,
        action=action,
        obj=adjustment,
        account=adjustment.account.client,
        before=before,
        after={**after, **(extra or {})},
    )


@transaction.atomic
def adjustment_propose(
    *, account: LedgerAccount, asset: str | Asset, amount: Decimal, reason: str, acting_user
) -> Adjustment:
    """Record a proposed correction of a client balance. Nothing is posted until another user approves it."""
    _require_staff_permission(acting_user, "ledger.add_adjustment", "propose adjustments")
    if not account.is_client:
        raise LedgerError("Adjustments apply to client accounts only.", code=Code.INVALID_ACCOUNT, field="account")
    precision = asset_precisions([_code(asset)]).get(_code(asset))
    if precision is None:
        raise LedgerError(f"Unknown asset {_code(asset)!r}.", code=Code.UNKNOWN_ASSET, field="asset")
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount == 0:
        raise InvalidAmount("An adjustment needs a non-zero decimal amount.", field="amount")
    amount = require_exact(amount, precision, field="amount")
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError("Say why the balance needs adjusting.", code=Code.REASON_REQUIRED, field="reason")
    adjustment = Adjustment.objects.create(
        account=account, asset_id=_code(asset), amount=amount, reason=reason[:500], proposed_by=acting_user
    )
    _adjustment_audit(adjustment, action="adjustment.propose", acting_user=acting_user)
    return adjustment


@transaction.atomic
def adjustment_approve(*, adjustment: Adjustment, acting_user) -> Adjustment:
    """Approve someone else's proposal and post it as one balanced entry. Approving again changes nothing."""
    _require_staff_permission(acting_user, "ledger.approve_adjustment", "approve adjustments")
    adjustment = Adjustment.objects.select_for_update(no_key=True).select_related("account").get(pk=adjustment.pk)
    _require_four_eyes(adjustment, acting_user)
    if adjustment.status == AdjustmentStatus.APPROVED:
        return adjustment
    if adjustment.status != AdjustmentStatus.PROPOSED:
        raise Conflict(f"Adjustment #{adjustment.pk} was already {adjustment.status}.", code=Code.ALREADY_DECIDED)
    before = {"status": adjustment.status}
    adjustment.entry = entry_post(
        key=f"adjustment:{adjustment.pk}",
        kind="adjustment",
        legs=[
            credit(adjustment.account, adjustment.asset_id, adjustment.amount),
            debit(firm_account(Purpose.EQUITY), adjustment.asset_id, adjustment.amount),
        ],
        memo=f"Adjustment #{adjustment.pk}: {adjustment.reason}"[:500],
        acting_user=acting_user,
    )
    adjustment.status = AdjustmentStatus.APPROVED
    adjustment.decided_by = acting_user
    adjustment.decided_at = timezone.now()
    adjustment.save(update_fields=["entry", "status", "decided_by", "decided_at"])
    _adjustment_audit(adjustment, action="adjustment.approve", acting_user=acting_user, before=before)
    event_record(type=EventType.ADJUSTMENT_POSTED, account_id=adjustment.account.client_id,
                 data=adjustment_data(adjustment))
    return adjustment


@transaction.atomic
def adjustment_reject(*, adjustment: Adjustment, acting_user, reason: str) -> Adjustment:
    """Turn a proposal down; nothing is posted. Rejecting again changes nothing."""
    _require_staff_permission(acting_user, "ledger.approve_adjustment", "reject adjustments")
    adjustment = Adjustment.objects.select_for_update(no_key=True).select_related("account").get(pk=adjustment.pk)
    _require_four_eyes(adjustment, acting_user)
    if adjustment.status == AdjustmentStatus.REJECTED:
        return adjustment
    if adjustment.status != AdjustmentStatus.PROPOSED:
        raise Conflict(f"Adjustment #{adjustment.pk} was already {adjustment.status}.", code=Code.ALREADY_DECIDED)
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError("Say why the adjustment is rejected.", code=Code.REASON_REQUIRED, field="reason")
    before = {"status": adjustment.status}
    adjustment.status = AdjustmentStatus.REJECTED
    adjustment.decided_by = acting_user
    adjustment.decided_at = timezone.now()
    adjustment.save(update_fields=["status", "decided_by", "decided_at"])
    _adjustment_audit(
        adjustment, action="adjustment.reject", acting_user=acting_user, before=before, extra={"reason": reason}
    )
    return adjustment
