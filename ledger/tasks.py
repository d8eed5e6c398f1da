"""Ledger background jobs: nightly reconciliation, end-of-day snapshots, report files. Thin: ids in, call a service."""

from __future__ import annotations

from datetime import date

from celery import shared_task
from django.contrib.auth import get_user_model

from ledger import reconciliation
from ledger.reports.services import report_job_execute
from ledger.snapshots import balance_snapshot_take as snapshot_take
from ledger.snapshots import last_complete_day


@shared_task(name="ledger.tasks.reconciliation_run", time_limit=3600, soft_time_limit=3500)
def reconciliation_run(user_id: int | None = None) -> int:
    """Nightly (beat) and on demand from the admin. Returns the run id."""
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return reconciliation.reconciliation_run(acting_user=user).pk


@shared_task(name="ledger.tasks.balance_snapshot_take", time_limit=3600, soft_time_limit=3500)
def balance_snapshot_take(day: str | None = None) -> int:
    """Snapshot the given ISO day, by default the UTC day that just ended. Returns the rows added."""
    return snapshot_take(day=date.fromisoformat(day) if day else last_complete_day())


@shared_task(name="ledger.tasks.report_job_run", time_limit=4 * 3600, soft_time_limit=4 * 3600 - 60)
def report_job_run(job_id: int) -> None:
    report_job_execute(job_id=job_id)
