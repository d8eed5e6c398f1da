"""The audit log's writer. Every service records its state changes here, inside its own transaction."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import models, transaction
from django.forms.models import model_to_dict

from audit.context import current_audit_context
from audit.models import AuditLog

if TYPE_CHECKING:
    from accounts.models import ClientAccount


def user_or_none(acting_user):
    """The acting user as a database user, or None for the system and anonymous callers."""
    return acting_user if getattr(acting_user, "pk", None) else None


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


def audit_values(obj: models.Model, fields: list[str] | None = None) -> dict:
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
    """Append an audit row. Must run inside the transaction of the change it records.

    Inside a web request the client IP, and the API key the acting user authenticated with, are taken from
    the request's audit context unless given.
    """
    row = audit_row(acting_user=acting_user, action=action, obj=obj, account=account, before=before, after=after,
                    label=label, ip_address=ip_address)
    row.save(force_insert=True)
    return row


def audit_row(*, acting_user, action: str, obj: models.Model, account: ClientAccount | None = None,
              before: dict | None = None, after: dict | None = None, label: str | None = None,
              ip_address: str | None = None) -> AuditLog:
    """``audit_record``'s row, not saved yet: for a caller that inserts it together with its other writes in
    the same transaction (order placement sends them as one statement)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    actor = user_or_none(acting_user)
    context = current_audit_context()
    if context is not None:
        ip_address = ip_address or context.ip_address
        if label is None and actor is not None and actor.pk == context.user_id:
            label = context.credential_label
    return AuditLog(
        actor=actor,
        actor_label=label or actor_label(acting_user),
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        account=account,
        before=_jsonable(before),
        after=_jsonable(after),
        ip_address=ip_address,
    )
