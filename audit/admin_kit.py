"""The ModelAdmin base for reference data edited directly in the console: every save is audited."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction

from audit.services import audit_record, audit_values
from core.admin_kit import DomainErrorsAsMessagesMixin, NoDeleteMixin


class AuditedModelAdmin(DomainErrorsAsMessagesMixin, NoDeleteMixin, admin.ModelAdmin):
    """Plain edits of reference data (limits, fee rates) are audited like service calls, in the same transaction."""

    def audit_account(self, obj):
        return None

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            before = audit_values(type(obj).objects.get(pk=obj.pk)) if change else None
            super().save_model(request, obj, form, change)
            audit_record(
                acting_user=request.user,
                action=f"{obj._meta.model_name}.{'change' if change else 'create'}",
                obj=obj,
                account=self.audit_account(obj),
                before=before,
                after=audit_values(obj),
            )
