"""Client accounts through their life (open, KYC, activate, freeze, close), their users and asset limits."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.errors import AccountNotEmpty, AccountNotOperational, AccountsError, Code, FourEyesViolation
from accounts.models import (
    OPEN_FUNDING_STATUSES,
    AccountKind,
    AccountStatus,
    ApiKey,
    AssetLimit,
    ClientAccount,
    Deposit,
    KycStatus,
    Membership,
    Role,
    Tier,
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
from accounts.services.api_keys import api_key_revoke
from audit.services import audit_record, audit_values, user_or_none
from core.db import row_locked
from core.exceptions import Code as CoreCode
from core.exceptions import Forbidden
from core.validation import require_choice
from ledger import selectors as ledger_selectors
from ledger.models import Asset

ACCOUNT_AUDIT_FIELDS = ["legal_name", "kind", "status", "kyc_status", "tier", "can_trade", "can_withdraw"]
APPROVE_KYC = "accounts.approve_kyc"


@transaction.atomic
def client_account_create(*, legal_name: str, kind: str = AccountKind.INSTITUTION, tier: str = Tier.STANDARD,
                          acting_user) -> ClientAccount:
    """Open a client account in ``pending`` with its ledger account; KYC and activation come next."""
    legal_name = (legal_name or "").strip()
    if not legal_name:
        raise AccountsError("A legal name is required.", code=CoreCode.REQUIRED, field="legal_name")
    require_choice(kind, AccountKind, field="kind", error=AccountsError)
    require_choice(tier, Tier, field="tier", error=AccountsError)
    account = ClientAccount.objects.create(legal_name=legal_name, kind=kind, tier=tier,
                                           created_by=user_or_none(acting_user))
    _ledger_account(account)
    audit_record(acting_user=acting_user, action="account.create", obj=account, account=account,
                 after=audit_values(account, ACCOUNT_AUDIT_FIELDS))
    return account


@transaction.atomic
def account_update(*, account: ClientAccount, acting_user, legal_name: str | None = None, tier: str | None = None,
                   can_trade: bool | None = None, can_withdraw: bool | None = None) -> ClientAccount:
    """Change an account's profile and permissions; arguments left as None keep their value."""
    account = row_locked(account)
    changes = {
        name: value
        for name, value in {"legal_name": legal_name, "tier": tier, "can_trade": can_trade,
                            "can_withdraw": can_withdraw}.items()
        if value is not None and getattr(account, name) != value
    }
    if "tier" in changes:
        require_choice(tier, Tier, field="tier", error=AccountsError)
    if "legal_name" in changes and not changes["legal_name"].strip():
        raise AccountsError("A legal name is required.", code=CoreCode.REQUIRED, field="legal_name")
    if not changes:
        return account
    return _save_audited(account, account=account, acting_user=acting_user, action="account.update",
                         audit_fields=ACCOUNT_AUDIT_FIELDS, **changes)


@transaction.atomic
def kyc_status_set(*, account: ClientAccount, kyc_status: str, acting_user, reason: str = "") -> ClientAccount:
    """Record the KYC outcome. Approving it is dual control (README "Security"): a named person with
    ``accounts.approve_kyc`` (compliance, supervisors), never the one who opened the account nor a user of it;
    the database refuses an approver equal to the opener too."""
    require_choice(kyc_status, KycStatus, field="kyc_status", error=AccountsError)
    account = row_locked(account)
    if account.kyc_status == kyc_status:
        return account
    approval = {"kyc_approved_by": None, "kyc_approved_at": None}
    if kyc_status == KycStatus.APPROVED:
        _require_kyc_approver(account, acting_user)
        approval = {"kyc_approved_by": user_or_none(acting_user), "kyc_approved_at": timezone.now()}
    return _save_audited(account, account=account, acting_user=acting_user, action="account.kyc_status_set",
                         audit_fields=ACCOUNT_AUDIT_FIELDS, note={"reason": reason}, kyc_status=kyc_status,
                         **approval)


def _require_kyc_approver(account: ClientAccount, acting_user) -> None:
    approver = user_or_none(acting_user)
    if approver is None:
        raise FourEyesViolation("Approving KYC needs a named person.", code=Code.KYC_APPROVER_REQUIRED)
    if not approver.has_perm(APPROVE_KYC):
        raise Forbidden("Approving KYC needs the approve_kyc permission (compliance, supervisors).",
                        code=CoreCode.PERMISSION_DENIED)
    if account.created_by_id == approver.pk:
        raise FourEyesViolation("Whoever opened an account cannot approve its KYC: a second person must.",
                                code=Code.SELF_APPROVAL)
    if Membership.objects.filter(account=account, user=approver).exists():
        raise FourEyesViolation("Users of the client account cannot approve its KYC.", code=Code.SELF_APPROVAL)


def _account_transition(*, account: ClientAccount, to: str, allowed_from, action: str, acting_user,
                        reason: str, check=None) -> ClientAccount:
    """Move an account to status ``to``. Already there: a replay, nothing written."""
    account = row_locked(account)
    if account.status == to:
        return account
    _require_status(account, allowed_from, action)
    if check is not None:
        check(account)
    return _save_audited(account, account=account, acting_user=acting_user, action=f"account.{action}",
                         audit_fields=ACCOUNT_AUDIT_FIELDS, note={"reason": reason}, status=to)


@transaction.atomic
def account_activate(*, account: ClientAccount, acting_user, reason: str = "") -> ClientAccount:
    """A pending account goes live once its KYC is approved."""
    return _account_transition(account=account, to=AccountStatus.ACTIVE, allowed_from={AccountStatus.PENDING},
                               action="activate", acting_user=acting_user, reason=reason,
                               check=_require_kyc_approved)


@transaction.atomic
def account_freeze(*, account: ClientAccount, acting_user, reason: str = "") -> ClientAccount:
    """Stop trading and withdrawals; balances, holds and incoming deposits are untouched."""
    return _account_transition(account=account, to=AccountStatus.FROZEN, allowed_from={AccountStatus.ACTIVE},
                               action="freeze", acting_user=acting_user, reason=reason)


@transaction.atomic
def account_unfreeze(*, account: ClientAccount, acting_user, reason: str = "") -> ClientAccount:
    return _account_transition(account=account, to=AccountStatus.ACTIVE, allowed_from={AccountStatus.FROZEN},
                               action="unfreeze", acting_user=acting_user, reason=reason,
                               check=_require_kyc_approved)


@transaction.atomic
def account_close(*, account: ClientAccount, acting_user, reason: str = "") -> ClientAccount:
    """Close for good: refused while anything is owed, held, open or pending. Revokes the account's API keys."""
    account = _account_transition(
        account=account, to=AccountStatus.CLOSED,
        allowed_from={AccountStatus.PENDING, AccountStatus.ACTIVE, AccountStatus.FROZEN},
        action="close", acting_user=acting_user, reason=reason, check=_require_empty,
    )
    for key in ApiKey.objects.filter(account=account, revoked_at__isnull=True):
        api_key_revoke(key=key, acting_user=acting_user)
    return account


def _require_empty(account: ClientAccount) -> None:
    problems = []
    balances = ledger_selectors.nonzero_balances(account=_ledger_account(account))
    if balances:
        problems.append("non-zero balances in " + ", ".join(sorted(b.asset for b in balances)))
    holds = ledger_selectors.active_holds(account=_ledger_account(account)).count()
    if holds:
        problems.append(f"{holds} active hold(s) (open orders or pending withdrawals)")
    pending = sum(
        model.objects.filter(account=account, status__in=OPEN_FUNDING_STATUSES).count()
        for model in (Deposit, Withdrawal)
    )
    if pending:
        problems.append(f"{pending} pending deposit(s)/withdrawal(s)")
    if problems:
        raise AccountNotEmpty("The account cannot be closed: " + "; ".join(problems) + ".")


def account_require_active(*, account: ClientAccount) -> None:
    """Refuse anything but an active account, naming why (trading and withdrawals call this)."""
    if account.status != AccountStatus.ACTIVE:
        code = {AccountStatus.FROZEN: Code.ACCOUNT_FROZEN, AccountStatus.CLOSED: Code.ACCOUNT_CLOSED}.get(
            account.status, Code.ACCOUNT_NOT_ACTIVE
        )
        raise AccountNotOperational(f"The account is {account.status}.", code=code)


def account_require_can_trade(*, account: ClientAccount) -> None:
    """Refuse trading (orders, quotes, conversions) unless the account is active, KYC-approved and allowed to trade."""
    account_require_active(account=account)
    _require_kyc_approved(account, doing="Trading")
    if not account.can_trade:
        raise AccountNotOperational("Trading is disabled for this account.", code=Code.TRADING_DISABLED)


# --- users of an account ----------------------------------------------------------------------------------


@transaction.atomic
def client_user_add(*, account: ClientAccount, username: str, email: str = "", role: str = Role.VIEWER,
                    password: str | None = None, acting_user) -> Membership:
    """Create a user in ``account`` with ``role``. Without a password the user can only use API keys."""
    require_choice(role, Role, field="role", error=AccountsError)
    if account.status == AccountStatus.CLOSED:
        raise AccountNotOperational("The account is closed.", code=Code.ACCOUNT_CLOSED)
    User = get_user_model()
    if not username or User.objects.filter(username__iexact=username).exists():
        raise AccountsError(f"The username {username!r} is taken or empty.", code=Code.USERNAME_TAKEN,
                            field="username")
    user = User(username=username, email=email)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    membership = Membership.objects.create(user=user, account=account, role=role)
    audit_record(acting_user=acting_user, action="client_user.add", obj=membership, account=account,
                 after={"username": username, "email": email, "role": role})
    return membership


@transaction.atomic
def client_user_role_set(*, membership: Membership, role: str, acting_user) -> Membership:
    require_choice(role, Role, field="role", error=AccountsError)
    membership = row_locked(membership)
    if membership.role == role:
        return membership
    before = {"role": membership.role}
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(acting_user=acting_user, action="client_user.role_set", obj=membership,
                 account=membership.account, before=before, after={"role": role})
    return membership


@transaction.atomic
def asset_limit_set(*, account: ClientAccount, asset: str | Asset, acting_user,
                    max_order_size: Decimal | None = None, daily_withdrawal_limit: Decimal | None = None
                    ) -> AssetLimit:
    """Set both per-asset limits of an account (None: no limit)."""
    asset = _asset(asset)
    for name, value in (("max_order_size", max_order_size), ("daily_withdrawal_limit", daily_withdrawal_limit)):
        if value is not None:
            _positive_amount(value, asset, field=name)
    limit, created = AssetLimit.objects.select_for_update(no_key=True).get_or_create(account=account, asset=asset)
    before = None if created else audit_values(limit, ["max_order_size", "daily_withdrawal_limit"])
    limit.max_order_size = max_order_size
    limit.daily_withdrawal_limit = daily_withdrawal_limit
    limit.save()
    audit_record(acting_user=acting_user, action="asset_limit.set", obj=limit, account=account, before=before,
                 after={"asset": asset.code, **audit_values(limit, ["max_order_size", "daily_withdrawal_limit"])})
    return limit
