"""Writes of the accounts domain. Every state change records an audit row in the same transaction."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from decimal import Decimal

from django.db import models, transaction
from django.forms.models import model_to_dict

from accounts.models import ApiKey, AuditLog, ClientAccount, Scope
from brokerage.exceptions import DomainError


def _jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    return value


def snapshot(obj: models.Model, fields: list[str] | None = None) -> dict:
    """A JSON-safe picture of a model's fields, for an audit row's before/after."""
    return _jsonable(model_to_dict(obj, fields=fields))


def actor_label(acting_user, credential=None) -> str:
    if credential is not None and hasattr(credential, "prefix"):
        return f"api-key:{credential.prefix}"
    if acting_user is None:
        return "system"
    return acting_user.get_username()


def audit_record(
    *,
    acting_user,
    action: str,
    obj: models.Model,
    account: ClientAccount | None = None,
    before: dict | None = None,
    after: dict | None = None,
    label: str | None = None,
    ip_address: str | None = None,
) -> AuditLog:
    """Append an audit row. Must run inside the transaction of the change it records."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    return AuditLog.objects.create(
        actor=acting_user if getattr(acting_user, "pk", None) else None,
        actor_label=label or actor_label(acting_user),
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        account=account,
        before=_jsonable(before),
        after=_jsonable(after),
        ip_address=ip_address,
    )


# --- API keys ---------------------------------------------------------------------------------------------


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_matches(key: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(key.secret_hash, _secret_hash(secret))


@transaction.atomic
def api_key_create(*, user, name: str = "", scopes: list[str], allowed_ips: list[str] | None = None,
                   acting_user=None) -> tuple[ApiKey, str]:
    """Create a key for ``user`` in their client account. Returns the key and the full secret, shown once."""
    unknown = set(scopes) - set(Scope.values)
    if unknown or not scopes:
        raise DomainError(f"Scopes must be a non-empty subset of {sorted(Scope.values)}.", code="invalid_scope",
                          field="scopes")
    membership = getattr(user, "membership", None)
    if membership is None:
        raise DomainError("Only users of a client account can hold API keys.", code="no_client_account")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        user=user, account=membership.account, name=name, prefix=prefix, secret_hash=_secret_hash(secret),
        scopes=sorted(set(scopes)), allowed_ips=allowed_ips or [],
    )
    audit_record(acting_user=acting_user or user, action="api_key.create", obj=key, account=membership.account,
                 after=snapshot(key, ["name", "prefix", "scopes", "allowed_ips"]))
    return key, f"{prefix}.{secret}"
