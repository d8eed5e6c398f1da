"""Onboarding a client's users and issuing their API keys, as operations staff do it (console and command).

- ``client_user_invite``: a user with a role in a client account, without a usable password, who is e-mailed a
  one-time link to set one (Django's password-reset tokens: the link dies once the password is set, and after
  ``PASSWORD_RESET_TIMEOUT``). ``password_link_send`` sends a new link; ``client_user_deactivate`` /
  ``client_user_reactivate`` switch a user off (revoking their keys) and on.
- ``api_key_issue``: a read-only key, issued by one staff user. A key that can move money (``trade`` or
  ``transfer`` scope) is under dual control, as withdrawals and adjustments are: ``api_key_request_propose`` by
  one staff user, ``api_key_request_approve`` by another (never the proposer, never a user of the client
  account), and only the approval creates the key. The database refuses an approver equal to the proposer.
- The secret of a key is returned once to the caller that created it (to show on a page or a terminal) and is
  never stored, logged or written to the audit log; the key keeps only its SHA-256.

Every function takes ``acting_user``, writes its audit rows in its transaction, and sends e-mail only after the
commit. Re-exported by ``accounts.services``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.errors import AccountNotOperational, AccountsError, Code, FourEyesViolation, InvalidTransition
from accounts.models import (
    ROLE_SCOPES,
    AccountStatus,
    ApiKey,
    ApiKeyRequest,
    ApiKeyRequestStatus,
    ClientAccount,
    Membership,
    Role,
    Scope,
)
from accounts.services import api_keys, lifecycle
from audit.services import audit_record, audit_values
from core.exceptions import Code as CoreCode
from core.exceptions import Forbidden

logger = logging.getLogger(__name__)

# Scopes that let a key move money: placing orders, requesting withdrawals.
MONEY_SCOPES = frozenset({Scope.TRADE, Scope.TRANSFER})
ISSUE_KEYS = "accounts.issue_apikey"
APPROVE_KEYS = "accounts.approve_apikeyrequest"
MANAGE_USERS = "accounts.change_membership"
ADD_USERS = "accounts.add_membership"

__all__ = [
    "MONEY_SCOPES", "LinkDelivery", "api_key_issue", "api_key_request_approve", "api_key_request_propose",
    "api_key_request_reject", "client_user_deactivate", "client_user_invite", "client_user_reactivate",
    "key_needs_dual_control", "password_link_send",
]


def _require_staff_permission(acting_user, perm: str, doing: str) -> None:
    if acting_user is None or not getattr(acting_user, "is_active", False) or not acting_user.has_perm(perm):
        raise Forbidden(f"You do not have permission to {doing}.", code=CoreCode.PERMISSION_DENIED)


# --- set-password links ---------------------------------------------------------------------------------------


@dataclass
class LinkDelivery:
    """What became of a set-password e-mail. Filled after the commit: ``sent`` is None until then."""

    email: str
    sent: bool | None = None
    error: str = ""

    def __str__(self) -> str:
        if self.sent:
            return f"A set-password link was e-mailed to {self.email}."
        if self.sent is None:
            return f"A set-password link will be e-mailed to {self.email} once the change is committed."
        return f"The set-password link could not be e-mailed to {self.email} ({self.error}); send it again."


def _set_password_url(user, base_url: str) -> str:
    path = reverse("client-set-password", kwargs={
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
    })
    return f"{(settings.PUBLIC_BASE_URL or base_url).rstrip('/')}{path}"


def _deliver(message: EmailMessage, delivery: LinkDelivery) -> None:
    try:
        message.send()
    except Exception as exc:  # SMTP down, refused, timed out: reported to the caller and logged, never raised
        delivery.sent, delivery.error = False, f"{type(exc).__name__}: {exc}"
        logger.error("Set-password e-mail to %s failed: %s", delivery.email, delivery.error)
    else:
        delivery.sent = True


def _schedule_link(membership: Membership, *, base_url: str, acting_user, action: str) -> LinkDelivery:
    """Prepare the e-mail now (the token is valid until the password changes), send it after the commit."""
    user = membership.user
    context = {
        "user": user, "account": membership.account, "role": membership.get_role_display(),
        "url": _set_password_url(user, base_url), "valid_days": round(settings.PASSWORD_RESET_TIMEOUT / 86400, 1),
    }
    subject = render_to_string("accounts/email/set_password_subject.txt", context).strip()
    body = render_to_string("accounts/email/set_password.txt", context)
    delivery = LinkDelivery(email=user.email)
    message = EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[user.email])
    audit_record(acting_user=acting_user, action=action, obj=membership, account=membership.account,
                 after={"username": user.get_username(), "email": user.email})
    transaction.on_commit(lambda: _deliver(message, delivery))
    return delivery


@transaction.atomic
def client_user_invite(*, account: ClientAccount, username: str, email: str, role: str = Role.VIEWER,
                       acting_user, base_url: str) -> tuple[Membership, LinkDelivery]:
    """Add a user with ``role`` to ``account`` and e-mail them a one-time link to set their password.

    ``base_url`` is the origin of the link when ``PUBLIC_BASE_URL`` is not set (the console passes the request's).
    Returns the membership and the e-mail's delivery, known once the transaction has committed.
    """
    _require_staff_permission(acting_user, ADD_USERS, "add client users")
    email = (email or "").strip()
    if not email:
        raise AccountsError("A new user needs an e-mail address for the set-password link.",
                            code=Code.EMAIL_REQUIRED, field="email")
    try:
        validate_email(email)
    except ValidationError:
        raise AccountsError(f"{email!r} is not an e-mail address.", code=Code.INVALID_EMAIL, field="email") from None
    membership = lifecycle.client_user_add(account=account, username=(username or "").strip(), email=email,
                                          role=role, password=None, acting_user=acting_user)
    delivery = _schedule_link(membership, base_url=base_url, acting_user=acting_user,
                              action="client_user.password_link_sent")
    return membership, delivery


def _locked_membership(membership: Membership) -> Membership:
    return Membership.objects.select_for_update(no_key=True).select_related("user", "account").get(pk=membership.pk)


@transaction.atomic
def password_link_send(*, membership: Membership, acting_user, base_url: str) -> LinkDelivery:
    """E-mail a client user a new one-time set-password link (the user forgot it, or the first one expired)."""
    _require_staff_permission(acting_user, MANAGE_USERS, "manage client users")
    membership = _locked_membership(membership)
    if not membership.user.is_active:
        raise InvalidTransition("The user is deactivated; reactivate them first.", code=Code.USER_INACTIVE)
    if not membership.user.email:
        raise AccountsError("The user has no e-mail address.", code=Code.EMAIL_REQUIRED, field="email")
    return _schedule_link(membership, base_url=base_url, acting_user=acting_user,
                          action="client_user.password_link_sent")


@transaction.atomic
def client_user_deactivate(*, membership: Membership, acting_user, reason: str = "") -> Membership:
    """Switch a client user off: no sign-in, every API key of theirs revoked at once. Replay-safe."""
    _require_staff_permission(acting_user, MANAGE_USERS, "manage client users")
    membership = _locked_membership(membership)
    user = membership.user
    revoked = [api_keys.api_key_revoke(key=key, acting_user=acting_user).prefix
               for key in ApiKey.objects.filter(user=user, revoked_at__isnull=True)]
    if not user.is_active:
        return membership
    user.is_active = False
    user.save(update_fields=["is_active"])
    audit_record(acting_user=acting_user, action="client_user.deactivate", obj=membership,
                 account=membership.account, before={"is_active": True},
                 after={"is_active": False, "reason": reason, "keys_revoked": revoked})
    return membership


@transaction.atomic
def client_user_reactivate(*, membership: Membership, acting_user, reason: str = "") -> Membership:
    """Switch a client user on again. Their revoked keys stay revoked: issue new ones."""
    _require_staff_permission(acting_user, MANAGE_USERS, "manage client users")
    membership = _locked_membership(membership)
    if membership.account.status == AccountStatus.CLOSED:
        raise AccountNotOperational("The account is closed.", code=Code.ACCOUNT_CLOSED)
    user = membership.user
    if user.is_active:
        return membership
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_record(acting_user=acting_user, action="client_user.reactivate", obj=membership,
                 account=membership.account, before={"is_active": False}, after={"is_active": True, "reason": reason})
    return membership


# --- API keys issued by staff -------------------------------------------------------------------------------


def key_needs_dual_control(scopes) -> bool:
    return bool(MONEY_SCOPES & set(scopes))


def _require_key_holder(user, scopes, allowed_ips) -> tuple[Membership, list[str], list[str]]:
    """The user must be an active member of an open account whose role grants ``scopes``."""
    membership = Membership.objects.filter(user=user).select_related("account", "user").first()
    if membership is None:
        raise AccountsError("Only users of a client account can hold API keys.", code=Code.NO_CLIENT_ACCOUNT,
                            field="user")
    if not membership.user.is_active:
        raise InvalidTransition("The user is deactivated.", code=Code.USER_INACTIVE, field="user")
    if membership.account.status == AccountStatus.CLOSED:
        raise AccountNotOperational("The account is closed.", code=Code.ACCOUNT_CLOSED)
    scopes = sorted(set(scopes or []))
    if not scopes or not set(scopes) <= set(Scope.values):
        raise AccountsError(f"Scopes must be a non-empty subset of {sorted(Scope.values)}.", code=Code.INVALID_SCOPE,
                            field="scopes")
    ceiling = ROLE_SCOPES[membership.role]
    if not set(scopes) <= ceiling:
        raise Forbidden(f"A {membership.role} can hold only the scopes {sorted(ceiling)}.",
                        code=Code.SCOPE_NOT_ALLOWED, field="scopes")
    return membership, scopes, api_keys._validated_ips(allowed_ips)


def _require_not_a_member(acting_user, account: ClientAccount) -> None:
    if Membership.objects.filter(user=acting_user, account=account).exists():
        raise FourEyesViolation("Users of the client account cannot issue or approve its keys.",
                                code=Code.SELF_APPROVAL)


@transaction.atomic
def api_key_issue(*, user, name: str = "", scopes, allowed_ips=None, acting_user) -> tuple[ApiKey, str]:
    """Issue a read-only key to a client user at once. Returns the key and its secret, to be shown once.
    A key that can move money is refused here (``dual_control_required``): propose it instead."""
    _require_staff_permission(acting_user, ISSUE_KEYS, "issue API keys")
    membership, scopes, allowed_ips = _require_key_holder(user, scopes, allowed_ips)
    _require_not_a_member(acting_user, membership.account)
    if key_needs_dual_control(scopes):
        raise FourEyesViolation("A key with the trade or transfer scope needs a second approver: propose it.",
                                code=Code.DUAL_CONTROL_REQUIRED, field="scopes")
    # Audited as api_key.create with the staff user as the actor.
    return api_keys.api_key_create(user=membership.user, name=name, scopes=scopes, allowed_ips=allowed_ips,
                                   acting_user=acting_user)


REQUEST_AUDIT_FIELDS = ["user", "name", "scopes", "allowed_ips", "status", "proposed_by", "decided_by", "reason",
                        "key"]


@transaction.atomic
def api_key_request_propose(*, user, name: str = "", scopes, allowed_ips=None, acting_user) -> ApiKeyRequest:
    """Propose a key for a client user; nothing is created until a different staff user approves it."""
    _require_staff_permission(acting_user, ISSUE_KEYS, "issue API keys")
    membership, scopes, allowed_ips = _require_key_holder(user, scopes, allowed_ips)
    _require_not_a_member(acting_user, membership.account)
    request = ApiKeyRequest.objects.create(account=membership.account, user=membership.user, name=name,
                                           scopes=scopes, allowed_ips=allowed_ips, proposed_by=acting_user)
    audit_record(acting_user=acting_user, action="api_key_request.propose", obj=request, account=request.account,
                 after=audit_values(request, REQUEST_AUDIT_FIELDS))
    return request


def _locked_request(request: ApiKeyRequest) -> ApiKeyRequest:
    return ApiKeyRequest.objects.select_for_update(no_key=True).select_related("account", "user").get(pk=request.pk)


def _require_second_person(request: ApiKeyRequest, acting_user) -> None:
    if request.proposed_by_id == acting_user.pk:
        raise FourEyesViolation("Four-eyes rule: the proposer of a key cannot approve or reject it.",
                                code=Code.FOUR_EYES)
    _require_not_a_member(acting_user, request.account)


@transaction.atomic
def api_key_request_approve(*, request: ApiKeyRequest, acting_user) -> tuple[ApiKeyRequest, str | None]:
    """Approve someone else's proposal: the key is created now. Returns the request and the key's secret, to
    be shown once to the approver. Approving an approved request again creates nothing and returns no secret."""
    _require_staff_permission(acting_user, APPROVE_KEYS, "approve API keys")
    request = _locked_request(request)
    _require_second_person(request, acting_user)
    if request.status == ApiKeyRequestStatus.APPROVED:
        return request, None
    if request.status != ApiKeyRequestStatus.PROPOSED:
        raise InvalidTransition(f"API key request #{request.pk} was already {request.status}.",
                                code=Code.ALREADY_DECIDED)
    # What held at the proposal is checked again: the role, the user or the account may have changed since.
    membership, scopes, allowed_ips = _require_key_holder(request.user, request.scopes, request.allowed_ips)
    if membership.account_id != request.account_id:
        raise InvalidTransition("The user has moved to another account since the proposal.", code=Code.NOT_A_MEMBER)
    before = {"status": request.status}
    key, secret = api_keys.api_key_create(user=membership.user, name=request.name, scopes=scopes,
                                          allowed_ips=allowed_ips, acting_user=acting_user)
    request.key, request.status = key, ApiKeyRequestStatus.APPROVED
    request.decided_by, request.decided_at = acting_user, timezone.now()
    request.save(update_fields=["key", "status", "decided_by", "decided_at"])
    audit_record(acting_user=acting_user, action="api_key_request.approve", obj=request, account=request.account,
                 before=before, after={**audit_values(request, REQUEST_AUDIT_FIELDS), "prefix": key.prefix})
    return request, secret


@transaction.atomic
def api_key_request_reject(*, request: ApiKeyRequest, acting_user, reason: str) -> ApiKeyRequest:
    """Turn a proposal down; no key is created. Rejecting again changes nothing."""
    _require_staff_permission(acting_user, APPROVE_KEYS, "reject API keys")
    request = _locked_request(request)
    _require_second_person(request, acting_user)
    if request.status == ApiKeyRequestStatus.REJECTED:
        return request
    if request.status != ApiKeyRequestStatus.PROPOSED:
        raise InvalidTransition(f"API key request #{request.pk} was already {request.status}.",
                                code=Code.ALREADY_DECIDED)
    reason = (reason or "").strip()
    if not reason:
        raise AccountsError("Say why the key is rejected.", code=Code.REASON_REQUIRED, field="reason")
    before = {"status": request.status}
    request.status, request.reason = ApiKeyRequestStatus.REJECTED, reason[:500]
    request.decided_by, request.decided_at = acting_user, timezone.now()
    request.save(update_fields=["status", "reason", "decided_by", "decided_at"])
    audit_record(acting_user=acting_user, action="api_key_request.reject", obj=request, account=request.account,
                 before=before, after=audit_values(request, REQUEST_AUDIT_FIELDS))
    return request
