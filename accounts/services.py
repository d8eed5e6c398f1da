"""Writes of the accounts domain: client accounts and their users, API keys, funding, the audit log.

Every state change locks the row it changes, validates the transition (``invalid_transition`` otherwise),
and records an audit row in the same transaction. Repeating a transition that already happened (completing
a completed deposit, revoking a revoked key) is a replay: it returns the object and writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.utils import timezone

from accounts import selectors
from accounts.errors import (
    AccountNotEmpty,
    AccountNotOperational,
    AccountsError,
    FourEyesViolation,
    InvalidTransition,
    LimitExceeded,
)
from accounts.models import (
    OPEN_FUNDING_STATUSES,
    ROLE_SCOPES,
    AccountKind,
    AccountStatus,
    ApiKey,
    AssetLimit,
    ClientAccount,
    Deposit,
    FundingStatus,
    KycStatus,
    Membership,
    Role,
    Scope,
    Tier,
    Withdrawal,
)
from audit.services import audit_record, audit_values, user_or_none
from core.exceptions import Forbidden
from core.validation import require_choice
from ledger import selectors as ledger_selectors
from ledger import services as ledger
from ledger.errors import IdempotencyConflict, InvalidAmount
from ledger.models import Asset, LedgerAccount, Purpose
from ledger.money import require_exact, to_decimal

DAILY_WINDOW = timedelta(hours=24)


# --- shared helpers ---------------------------------------------------------------------------------------


def _locked(obj: models.Model) -> models.Model:
    """Re-read ``obj`` under a row lock: every transition decides on the current state, not a stale copy."""
    return type(obj).objects.select_for_update(no_key=True).get(pk=obj.pk)


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
    return obj


def _asset(asset: str | Asset) -> Asset:
    if isinstance(asset, Asset):
        return asset
    found = Asset.objects.filter(code=asset).first()
    if found is None:
        raise AccountsError(f"Unknown asset {asset!r}.", code="unknown_asset", field="asset")
    return found


def _positive_amount(amount, asset: Asset, *, field: str = "amount") -> Decimal:
    amount = to_decimal(amount, field=field)
    if amount <= 0:
        raise InvalidAmount("The amount must be greater than zero.", code="not_positive", field=field)
    return require_exact(amount, asset.precision, field=field)


def _ledger_account(account: ClientAccount) -> LedgerAccount:
    return ledger.client_ledger_account_create(client=account)


# --- client accounts ------------------------------------------------------------------------------------

ACCOUNT_AUDIT_FIELDS = ["legal_name", "kind", "status", "kyc_status", "tier", "can_trade", "can_withdraw"]


@transaction.atomic
def client_account_create(*, legal_name: str, kind: str = AccountKind.INSTITUTION, tier: str = Tier.STANDARD,
                          acting_user) -> ClientAccount:
    """Open a client account in ``pending`` with its ledger account; KYC and activation come next."""
    legal_name = (legal_name or "").strip()
    if not legal_name:
        raise AccountsError("A legal name is required.", code="required", field="legal_name")
    require_choice(kind, AccountKind, field="kind", error=AccountsError)
    require_choice(tier, Tier, field="tier", error=AccountsError)
    account = ClientAccount.objects.create(legal_name=legal_name, kind=kind, tier=tier)
    _ledger_account(account)
    audit_record(acting_user=acting_user, action="account.create", obj=account, account=account,
                 after=audit_values(account, ACCOUNT_AUDIT_FIELDS))
    return account


@transaction.atomic
def account_update(*, account: ClientAccount, acting_user, legal_name: str | None = None, tier: str | None = None,
                   can_trade: bool | None = None, can_withdraw: bool | None = None) -> ClientAccount:
    """Change an account's profile and permissions; arguments left as None keep their value."""
    account = _locked(account)
    changes = {
        name: value
        for name, value in {"legal_name": legal_name, "tier": tier, "can_trade": can_trade,
                            "can_withdraw": can_withdraw}.items()
        if value is not None and getattr(account, name) != value
    }
    if "tier" in changes:
        require_choice(tier, Tier, field="tier", error=AccountsError)
    if "legal_name" in changes and not changes["legal_name"].strip():
        raise AccountsError("A legal name is required.", code="required", field="legal_name")
    if not changes:
        return account
    return _save_audited(account, account=account, acting_user=acting_user, action="account.update",
                         audit_fields=ACCOUNT_AUDIT_FIELDS, **changes)


@transaction.atomic
def kyc_status_set(*, account: ClientAccount, kyc_status: str, acting_user, reason: str = "") -> ClientAccount:
    require_choice(kyc_status, KycStatus, field="kyc_status", error=AccountsError)
    account = _locked(account)
    if account.kyc_status == kyc_status:
        return account
    return _save_audited(account, account=account, acting_user=acting_user, action="account.kyc_status_set",
                         audit_fields=ACCOUNT_AUDIT_FIELDS, note={"reason": reason}, kyc_status=kyc_status)


def _require_kyc_approved(account: ClientAccount, *, doing: str = "") -> None:
    if account.kyc_status != KycStatus.APPROVED:
        message = f"{doing} needs an approved KYC review." if doing else "The account's KYC is not approved."
        raise AccountNotOperational(message, code="kyc_not_approved")


def _account_transition(*, account: ClientAccount, to: str, allowed_from, action: str, acting_user,
                        reason: str, check=None) -> ClientAccount:
    """Move an account to status ``to``. Already there: a replay, nothing written."""
    account = _locked(account)
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
        code = {AccountStatus.FROZEN: "account_frozen", AccountStatus.CLOSED: "account_closed"}.get(
            account.status, "account_not_active"
        )
        raise AccountNotOperational(f"The account is {account.status}.", code=code)


def account_require_can_trade(*, account: ClientAccount) -> None:
    """Refuse trading (orders, quotes, conversions) unless the account is active, KYC-approved and allowed to trade."""
    account_require_active(account=account)
    _require_kyc_approved(account, doing="Trading")
    if not account.can_trade:
        raise AccountNotOperational("Trading is disabled for this account.", code="trading_disabled")


# --- users of an account ----------------------------------------------------------------------------------


@transaction.atomic
def client_user_add(*, account: ClientAccount, username: str, email: str = "", role: str = Role.VIEWER,
                    password: str | None = None, acting_user) -> Membership:
    """Create a user in ``account`` with ``role``. Without a password the user can only use API keys."""
    require_choice(role, Role, field="role", error=AccountsError)
    if account.status == AccountStatus.CLOSED:
        raise AccountNotOperational("The account is closed.", code="account_closed")
    User = get_user_model()
    if not username or User.objects.filter(username__iexact=username).exists():
        raise AccountsError(f"The username {username!r} is taken or empty.", code="username_taken",
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
    membership = _locked(membership)
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


# --- API keys ---------------------------------------------------------------------------------------------


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_matches(key: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(key.secret_hash, _secret_hash(secret))


def _validated_ips(allowed_ips) -> list[str]:
    try:
        return sorted({str(ipaddress.ip_address(ip)) for ip in allowed_ips or []})
    except (TypeError, ValueError) as exc:
        raise AccountsError("allowed_ips must be a list of IP addresses.", code="invalid_ip",
                            field="allowed_ips") from exc


@transaction.atomic
def api_key_create(*, user, name: str = "", scopes: list[str], allowed_ips: list[str] | None = None,
                   issuing_key: ApiKey | None = None, acting_user=None) -> tuple[ApiKey, str]:
    """Create a key for ``user`` in their client account. Returns the key and the full secret, shown once.

    A key can hold only scopes the user's role grants. A key created *through* another key (``issuing_key``)
    can neither widen that key's scopes nor escape its IP allow-list.
    """
    unknown = set(scopes) - set(Scope.values)
    if unknown or not scopes:
        raise AccountsError(f"Scopes must be a non-empty subset of {sorted(Scope.values)}.", code="invalid_scope",
                            field="scopes")
    membership = getattr(user, "membership", None)
    if membership is None:
        raise AccountsError("Only users of a client account can hold API keys.", code="no_client_account")
    account = ClientAccount.objects.get(pk=membership.account_id)
    if account.status == AccountStatus.CLOSED:
        raise AccountNotOperational("The account is closed.", code="account_closed")
    allowed_ips = _validated_ips(allowed_ips)
    ceiling = ROLE_SCOPES[membership.role] & (set(issuing_key.scopes) if issuing_key else set(Scope.values))
    if not set(scopes) <= ceiling:
        raise Forbidden(f"Scopes beyond {sorted(ceiling)} cannot be granted here.", code="scope_not_allowed",
                        field="scopes")
    if issuing_key and issuing_key.allowed_ips and not (allowed_ips and set(allowed_ips) <= set(issuing_key.allowed_ips)):
        raise Forbidden("A key issued by an IP-restricted key must be restricted to some of the same IPs.",
                        code="ip_allow_list_required", field="allowed_ips")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        user=user, account=account, name=name, prefix=prefix, secret_hash=_secret_hash(secret),
        scopes=sorted(set(scopes)), allowed_ips=allowed_ips,
    )
    audit_record(acting_user=acting_user or user, action="api_key.create", obj=key, account=account,
                 after=audit_values(key, ["user", "name", "prefix", "scopes", "allowed_ips"]))
    return key, f"{prefix}.{secret}"


@transaction.atomic
def api_key_revoke(*, key: ApiKey, acting_user) -> ApiKey:
    """Revoke a key at once. Revoking a revoked key changes nothing."""
    key = _locked(key)
    if key.revoked_at is not None:
        return key
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit_record(acting_user=acting_user, action="api_key.revoke", obj=key, account=key.account,
                 before={"revoked_at": None}, after={"revoked_at": key.revoked_at, "prefix": key.prefix})
    return key


# --- funding: deposits --------------------------------------------------------------------------------------

FUNDING_AUDIT_FIELDS = [
    "asset", "amount", "status", "blockchain_address", "tx_hash", "bank_reference", "reason",
    "requested_by", "approved_by", "entry",
]
WITHDRAWAL_AUDIT_FIELDS = [*FUNDING_AUDIT_FIELDS, "hold", "requires_four_eyes", "second_approved_by"]


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
            raise AccountsError("An idempotency key is required.", code="idempotency_key_required",
                                field="idempotency_key")
        return None
    if len(value) > 200:
        raise AccountsError("An idempotency key has at most 200 characters.", code="invalid_idempotency_key",
                            field="idempotency_key")
    return value


@transaction.atomic
def deposit_request(*, account: ClientAccount, asset: str | Asset, amount, acting_user,
                    idempotency_key: str | None = None, blockchain_address: str = "", tx_hash: str = "",
                    bank_reference: str = "") -> Deposit:
    """Record that a client is sending funds. Nothing is credited until operations complete it."""
    account = _locked(account)
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
    deposit = Deposit.objects.create(account=account, idempotency_key=idempotency_key, requested_by=user_or_none(acting_user),
                                     **content)
    audit_record(acting_user=acting_user, action="deposit.request", obj=deposit, account=account,
                 after=audit_values(deposit, FUNDING_AUDIT_FIELDS))
    return deposit


@transaction.atomic
def deposit_approve(*, deposit: Deposit, acting_user) -> Deposit:
    deposit = _locked(deposit)
    if deposit.status == FundingStatus.APPROVED:
        return deposit
    _require_status(deposit, {FundingStatus.REQUESTED}, "approve")
    return _save_audited(deposit, account=deposit.account, acting_user=acting_user, action="deposit.approve",
                         audit_fields=FUNDING_AUDIT_FIELDS, status=FundingStatus.APPROVED,
                         approved_by=user_or_none(acting_user))


@transaction.atomic
def deposit_complete(*, deposit: Deposit, acting_user, tx_hash: str | None = None) -> Deposit:
    """The funds have arrived: debit custody, credit the client (entry ``deposit:<id>``)."""
    deposit = _locked(deposit)
    if deposit.status == FundingStatus.COMPLETED:
        return deposit
    _require_status(deposit, {FundingStatus.APPROVED}, "complete")
    entry = ledger.entry_post(
        key=f"deposit:{deposit.pk}",
        kind="deposit",
        legs=[
            ledger.debit(ledger.firm_account(Purpose.CUSTODY), deposit.asset_id, deposit.amount),
            ledger.credit(_ledger_account(deposit.account), deposit.asset_id, deposit.amount),
        ],
        memo=f"Deposit #{deposit.pk}",
        acting_user=user_or_none(acting_user),
    )
    changes = {"status": FundingStatus.COMPLETED, "entry": entry}
    if tx_hash:
        changes["tx_hash"] = tx_hash
    return _save_audited(deposit, account=deposit.account, acting_user=acting_user, action="deposit.complete",
                         audit_fields=FUNDING_AUDIT_FIELDS, **changes)


@transaction.atomic
def deposit_reject(*, deposit: Deposit, acting_user, reason: str = "") -> Deposit:
    deposit = _locked(deposit)
    if deposit.status == FundingStatus.REJECTED:
        return deposit
    _require_status(deposit, OPEN_FUNDING_STATUSES, "reject")
    return _save_audited(deposit, account=deposit.account, acting_user=acting_user, action="deposit.reject",
                         audit_fields=FUNDING_AUDIT_FIELDS, status=FundingStatus.REJECTED, reason=reason)


# --- funding: withdrawals -----------------------------------------------------------------------------------


def withdrawal_needs_four_eyes(*, asset: str, amount: Decimal) -> bool:
    """Above the asset's threshold (settings.WITHDRAWAL_FOUR_EYES_THRESHOLDS, in the asset's own units) two
    approvers are needed; an asset without a threshold always needs two."""
    threshold = settings.WITHDRAWAL_FOUR_EYES_THRESHOLDS.get(asset)
    return threshold is None or amount > threshold


def _require_can_withdraw(account: ClientAccount) -> None:
    account_require_active(account=account)
    _require_kyc_approved(account)
    if not account.can_withdraw:
        raise AccountNotOperational("Withdrawals are disabled for this account.", code="withdrawals_disabled")


def _require_destination(asset: Asset, *, blockchain_address: str, bank_reference: str) -> None:
    if asset.is_fiat and not bank_reference:
        raise AccountsError(f"A {asset.code} withdrawal needs a bank reference.", code="destination_required",
                            field="bank_reference")
    if not asset.is_fiat and not blockchain_address:
        raise AccountsError(f"A {asset.code} withdrawal needs a blockchain address.", code="destination_required",
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
    account = _locked(account)
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
    _require_within_daily_limit(account, asset, amount)
    withdrawal = Withdrawal.objects.create(
        account=account, idempotency_key=idempotency_key, requested_by=user_or_none(acting_user),
        requires_four_eyes=withdrawal_needs_four_eyes(asset=asset.code, amount=amount), **content,
    )
    withdrawal.hold = ledger.hold_place(key=f"withdrawal:{withdrawal.pk}", account=_ledger_account(account),
                                        asset=asset, amount=amount, reason=f"Withdrawal #{withdrawal.pk}")
    withdrawal.save(update_fields=["hold"])
    audit_record(acting_user=acting_user, action="withdrawal.request", obj=withdrawal, account=account,
                 after=audit_values(withdrawal, WITHDRAWAL_AUDIT_FIELDS))
    return withdrawal


@transaction.atomic
def withdrawal_approve(*, withdrawal: Withdrawal, acting_user) -> Withdrawal:
    """Approve as operations. Never by the requester nor by a user of the client account; above the four-eyes
    threshold the first approval leaves it ``requested`` and a second, different approver makes it ``approved``.
    Approving an approved withdrawal again (a replay by one of its approvers) changes nothing."""
    withdrawal = _locked(withdrawal)
    approver = user_or_none(acting_user)
    if approver is None:
        raise FourEyesViolation("Approving a withdrawal needs a named user.", code="approver_required")
    if withdrawal.status == FundingStatus.APPROVED and approver.pk in (
        withdrawal.approved_by_id, withdrawal.second_approved_by_id
    ):
        return withdrawal
    _require_status(withdrawal, {FundingStatus.REQUESTED}, "approve")
    if approver.pk == withdrawal.approved_by_id:
        raise FourEyesViolation("This withdrawal needs a second approval by a different user.",
                                code="second_approver_required")
    if approver.pk == withdrawal.requested_by_id:
        raise FourEyesViolation("The requester of a withdrawal cannot approve it.", code="self_approval")
    if Membership.objects.filter(user=approver, account=withdrawal.account).exists():
        raise FourEyesViolation("Users of the client account cannot approve its withdrawals.",
                                code="self_approval")
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
    withdrawal = _locked(withdrawal)
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
    withdrawal = _locked(withdrawal)
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
