"""The audit log in the console, read only."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from audit.models import AuditLog
from core.admin_kit import ReadOnlyAdminMixin


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "actor_label", "action", "object_type", "object_id", "account"]
    list_filter = ["action", "object_type", "at"]
    search_fields = ["actor_label", "action", "object_id", "account__legal_name"]
    list_select_related = ["account"]
    date_hierarchy = "at"
    show_full_result_count = False
    fields = ["at", "actor", "actor_label", "action", "object_type", "object_id", "account", "ip_address",
              "before_json", "after_json"]
    readonly_fields = fields

    @admin.display(description="before")
    def before_json(self, obj):
        return _pretty(obj.before)

    @admin.display(description="after")
    def after_json(self, obj):
        return _pretty(obj.after)


def _pretty(value):
    if value is None:
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))
