"""Compliance's metrics, read at scrape time from the latest finished reconciliation run:
``brokerage_reconciliation_breaks{check}`` (breaks per check; 0 for a clean run),
``brokerage_reconciliation_ok`` (1 clean, 0 breaks) and ``brokerage_reconciliation_last_run_timestamp_seconds``."""

from __future__ import annotations

from django.db.models import Count

from core.metrics import gauge_family
from ledger.models import ReconciliationBreak, ReconciliationRun


def reconciliation_state():
    breaks = gauge_family("reconciliation_breaks", "Breaks found by the latest reconciliation run, per check.",
                          ["check"])
    ok = gauge_family("reconciliation_ok", "1 if the latest reconciliation run was clean, 0 if it found breaks.")
    finished = gauge_family("reconciliation_last_run_timestamp_seconds",
                            "When the latest reconciliation run finished (Unix time).")
    run = ReconciliationRun.objects.filter(finished_at__isnull=False).order_by("-id").first()
    if run is None:
        return [breaks, ok, finished]
    counts = dict(ReconciliationBreak.objects.filter(run=run).values_list("check_name").annotate(n=Count("id"))
                  .order_by())
    for check in sorted(set(run.checks) | set(counts)):
        breaks.add_metric([check], counts.get(check, 0))
    ok.add_metric([], 1 if run.ok else 0)
    finished.add_metric([], run.finished_at.timestamp())
    return [breaks, ok, finished]
