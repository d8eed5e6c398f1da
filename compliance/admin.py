"""Reconciliation runs and their breaks in the console, read only (runs are started from the dashboard)."""

from __future__ import annotations

from django.contrib import admin

from core.admin_kit import ReadOnlyAdminMixin
from ledger.models import ReconciliationBreak, ReconciliationRun


class ReconciliationBreakInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ReconciliationBreak
    fields = ["check_name", "account", "asset", "expected", "actual", "detail"]
    readonly_fields = fields
    extra = 0


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "started_at", "finished_at", "ok", "triggered_by"]
    list_filter = ["ok"]
    inlines = [ReconciliationBreakInline]
