"""Compliance background jobs: nightly reconciliation and report files. Thin: ids in, call a service.

The task names keep their ``ledger.tasks.`` prefix from before these jobs had a room of their own, so the beat
schedule and messages already queued still route.
"""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth import get_user_model

from compliance import reconciliation
from compliance.reports.services import report_job_execute


@shared_task(name="ledger.tasks.reconciliation_run", time_limit=3600, soft_time_limit=3500)
def reconciliation_run(user_id: int | None = None) -> int:
    """Nightly (beat) and on demand from the admin. Returns the run id."""
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return reconciliation.reconciliation_run(acting_user=user).pk


@shared_task(name="ledger.tasks.report_job_run", time_limit=4 * 3600, soft_time_limit=4 * 3600 - 60)
def report_job_run(job_id: int) -> None:
    report_job_execute(job_id=job_id)
