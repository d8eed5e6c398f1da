"""Reads of the audit log."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditLog


def audit_log_of(*, account) -> QuerySet[AuditLog]:
    return AuditLog.objects.filter(account=account)
