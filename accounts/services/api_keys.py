"""API keys: created within the holder's role (and the issuing key's scopes and IPs), revoked at once,
matched by their secret's hash."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

from django.db import transaction
from django.utils import timezone

from accounts import outbox
from accounts.errors import AccountNotOperational, AccountsError, Code
from accounts.models import ROLE_SCOPES, AccountStatus, ApiKey, ClientAccount, Scope
from audit.services import audit_record, audit_values
from core.db import row_locked
from core.exceptions import Forbidden


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_matches(key: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(key.secret_hash, _secret_hash(secret))


def _validated_ips(allowed_ips) -> list[str]:
    try:
        return sorted({str(ipaddress.ip_address(ip)) for ip in allowed_ips or []})
    except (TypeError, ValueError) as exc:
        raise AccountsError("allowed_ips must be a list of IP addresses.", code=Code.INVALID_IP,
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
        raise AccountsError(f"Scopes must be a non-empty subset of {sorted(Scope.values)}.", code=Code.INVALID_SCOPE,
                            field="scopes")
    membership = getattr(user, "membership", None)
    if membership is None:
        raise AccountsError("Only users of a client account can hold API keys.", code=Code.NO_CLIENT_ACCOUNT)
    account = ClientAccount.objects.get(pk=membership.account_id)
    if account.status == AccountStatus.CLOSED:
        raise AccountNotOperational("The account is closed.", code=Code.ACCOUNT_CLOSED)
    allowed_ips = _validated_ips(allowed_ips)
    ceiling = ROLE_SCOPES[membership.role] & (set(issuing_key.scopes) if issuing_key else set(Scope.values))
    if not set(scopes) <= ceiling:
        raise Forbidden(f"Scopes beyond {sorted(ceiling)} cannot be granted here.", code=Code.SCOPE_NOT_ALLOWED,
                        field="scopes")
    if issuing_key and issuing_key.allowed_ips and not (allowed_ips and set(allowed_ips) <= set(issuing_key.allowed_ips)):
        raise Forbidden("A key issued by an IP-restricted key must be restricted to some of the same IPs.",
                        code=Code.IP_ALLOW_LIST_REQUIRED, field="allowed_ips")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        user=user, account=account, name=name, prefix=prefix, secret_hash=_secret_hash(secret),
        scopes=sorted(set(scopes)), allowed_ips=allowed_ips,
    )
    audit_record(acting_user=acting_user or user, action="api_key.create", obj=key, account=account,
                 after=audit_values(key, ["user", "name", "prefix", "scopes", "allowed_ips"]))
    outbox.api_key_changed(key)
    return key, f"{prefix}.{secret}"


@transaction.atomic
def api_key_revoke(*, key: ApiKey, acting_user) -> ApiKey:
    """Revoke a key at once. Revoking a revoked key changes nothing."""
    key = row_locked(key)
    if key.revoked_at is not None:
        return key
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit_record(acting_user=acting_user, action="api_key.revoke", obj=key, account=key.account,
                 before={"revoked_at": None}, after={"revoked_at": key.revoked_at, "prefix": key.prefix})
    outbox.api_key_changed(key)
    return key
