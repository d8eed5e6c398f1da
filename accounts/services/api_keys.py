"""API keys: created within the holder's role (and the issuing key's scopes, IPs and expiry), capped per user,
revoked at once together with every key created through them, matched by their secret's hash.

A key created with ``signing_required`` signs every request (README "Request signing"). Its secret is not random
but derived from the prefix with the server's signing master key (``api_key_signing_secret``), so the server can
check an HMAC made with it while storing, as for every key, only the secret's SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from base64 import urlsafe_b64encode
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import outbox
from accounts.errors import AccountNotOperational, AccountsError, Code
from accounts.models import ROLE_SCOPES, AccountStatus, ApiKey, ClientAccount, Membership, Scope
from audit.services import audit_record, audit_values
from core.db import row_locked
from core.exceptions import Conflict, Forbidden

KEY_AUDIT_FIELDS = ["user", "name", "prefix", "scopes", "allowed_ips", "expires_at", "created_by_key",
                    "signing_required"]


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_matches(key: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(key.secret_hash, _secret_hash(secret))


def _signing_master_key() -> bytes:
    configured = settings.API_KEY_SIGNING_MASTER_KEY
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"brokerage:api-key-signing-master", hashlib.sha256).digest()


def api_key_signing_secret(prefix: str) -> str:
    """The secret of a signing key: HMAC-SHA256 of its prefix under the signing master key, base64url."""
    digest = hmac.new(_signing_master_key(), f"api-key:{prefix}".encode(), hashlib.sha256).digest()
    return urlsafe_b64encode(digest).decode().rstrip("=")


def _validated_expiry(expires_at: datetime | None, issuing_key: ApiKey | None) -> datetime | None:
    """In the future, and never after the issuing key's own expiry (which it inherits when none is given)."""
    ceiling = issuing_key.expires_at if issuing_key else None
    if expires_at is None:
        return ceiling
    if not isinstance(expires_at, datetime) or timezone.is_naive(expires_at):
        raise AccountsError("expires_at must be a date-time with a time zone.", code=Code.INVALID_EXPIRY,
                            field="expires_at")
    if expires_at <= timezone.now():
        raise AccountsError("expires_at must be in the future.", code=Code.INVALID_EXPIRY, field="expires_at")
    if ceiling is not None and expires_at > ceiling:
        raise AccountsError("A key cannot outlive the key it is created with.", code=Code.INVALID_EXPIRY,
                            field="expires_at")
    return expires_at


def _require_below_cap(user) -> None:
    """At most ``settings.API_KEYS_MAX_ACTIVE_PER_USER`` active keys; the caller holds the membership's lock."""
    now = timezone.now()
    active = (ApiKey.objects.filter(user=user, revoked_at__isnull=True)
              .exclude(expires_at__lte=now).count())
    cap = settings.API_KEYS_MAX_ACTIVE_PER_USER
    if active >= cap:
        raise Conflict(f"A user holds at most {cap} active API keys: revoke one first.",
                       code=Code.API_KEY_LIMIT_REACHED)


def _validated_ips(allowed_ips) -> list[str]:
    try:
        return sorted({str(ipaddress.ip_address(ip)) for ip in allowed_ips or []})
    except (TypeError, ValueError) as exc:
        raise AccountsError("allowed_ips must be a list of IP addresses.", code=Code.INVALID_IP,
                            field="allowed_ips") from exc


@transaction.atomic
def api_key_create(*, user, name: str = "", scopes: list[str], allowed_ips: list[str] | None = None,
                   issuing_key: ApiKey | None = None, expires_at: datetime | None = None,
                   signing_required: bool = False, acting_user=None) -> tuple[ApiKey, str]:
    """Create a key for ``user`` in their client account. Returns the key and the full secret, shown once.

    A key can hold only scopes the user's role grants. A key created *through* another key (``issuing_key``)
    can neither widen that key's scopes nor escape its IP allow-list or outlive it, and is revoked with it.
    A user holds at most ``settings.API_KEYS_MAX_ACTIVE_PER_USER`` active keys (``api_key_limit_reached``).
    """
    unknown = set(scopes) - set(Scope.values)
    if unknown or not scopes:
        raise AccountsError(f"Scopes must be a non-empty subset of {sorted(Scope.values)}.", code=Code.INVALID_SCOPE,
                            field="scopes")
    membership = getattr(user, "membership", None)
    if membership is None:
        raise AccountsError("Only users of a client account can hold API keys.", code=Code.NO_CLIENT_ACCOUNT)
    Membership.objects.select_for_update(no_key=True).filter(pk=membership.pk).first()  # serialises the cap check
    account = ClientAccount.objects.get(pk=membership.account_id)
    if account.status == AccountStatus.CLOSED:
        raise AccountNotOperational("The account is closed.", code=Code.ACCOUNT_CLOSED)
    allowed_ips = _validated_ips(allowed_ips)
    if issuing_key is not None and Scope.MANAGE_KEYS not in issuing_key.scopes:
        raise Forbidden("Creating keys needs the 'manage_keys' scope.", code=Code.SCOPE_REQUIRED, field="scopes")
    ceiling = ROLE_SCOPES[membership.role] & (set(issuing_key.scopes) if issuing_key else set(Scope.values))
    if not set(scopes) <= ceiling:
        raise Forbidden(f"Scopes beyond {sorted(ceiling)} cannot be granted here.", code=Code.SCOPE_NOT_ALLOWED,
                        field="scopes")
    if issuing_key and issuing_key.allowed_ips and not (allowed_ips and set(allowed_ips) <= set(issuing_key.allowed_ips)):
        raise Forbidden("A key issued by an IP-restricted key must be restricted to some of the same IPs.",
                        code=Code.IP_ALLOW_LIST_REQUIRED, field="allowed_ips")
    if issuing_key is not None:
        issuing_key = row_locked(issuing_key)  # a revocation racing this request either waits or is seen
        if not issuing_key.is_active:
            raise Forbidden("The key this request was made with is no longer active.", code=Code.INVALID_API_KEY)
    expires_at = _validated_expiry(expires_at, issuing_key)
    _require_below_cap(user)
    prefix = secrets.token_hex(6)
    secret = api_key_signing_secret(prefix) if signing_required else secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        user=user, account=account, name=name, prefix=prefix, secret_hash=_secret_hash(secret),
        scopes=sorted(set(scopes)), allowed_ips=allowed_ips, expires_at=expires_at, created_by_key=issuing_key,
        signing_required=bool(signing_required),
    )
    audit_record(acting_user=acting_user or user, action="api_key.create", obj=key, account=account,
                 after=audit_values(key, KEY_AUDIT_FIELDS))
    outbox.api_key_changed(key)
    return key, f"{prefix}.{secret}"


@transaction.atomic
def api_key_revoke(*, key: ApiKey, acting_user) -> ApiKey:
    """Revoke a key at once, and every key created through it (and through those, ...): a key minted by a
    leaked key dies with it. Revoking a revoked key changes nothing (its descendants are still revoked)."""
    key = row_locked(key)
    now = timezone.now()
    pending, seen = [(key, None)], set()
    while pending:
        current, cause = pending.pop()
        if current.pk in seen:
            continue
        seen.add(current.pk)
        if current.revoked_at is None:
            current.revoked_at = now
            current.save(update_fields=["revoked_at"])
            after = {"revoked_at": now, "prefix": current.prefix}
            if cause is not None:
                after["revoked_with"] = cause
            audit_record(acting_user=acting_user, action="api_key.revoke", obj=current, account=current.account,
                         before={"revoked_at": None}, after=after)
            outbox.api_key_changed(current)
        children = ApiKey.objects.select_for_update(no_key=True).filter(created_by_key=current).order_by("pk")
        pending.extend((child, current.prefix) for child in children)
    key.refresh_from_db(fields=["revoked_at"])
    return key
