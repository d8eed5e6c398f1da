"""Report jobs (a report written to a file by a worker, with progress) and the audit trail of exports."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from compliance.reports.definitions import Scope
from compliance.reports.forms import ReportParams
from compliance.reports.writer import report_get, report_render
from ledger.dates import iso_utc
from ledger.models import ReportJob, ReportJobStatus

logger = logging.getLogger(__name__)

REPORTS_DIR = "reports"


def _described(params: ReportParams, **extra) -> dict:
    return {
        "report": params.name, "from": iso_utc(params.scope.start), "to": iso_utc(params.scope.end),
        "account": params.scope.account.pk if params.scope.account else None, "format": params.fmt, **extra,
    }


@transaction.atomic
def report_export_record(*, params: ReportParams, acting_user, channel: str) -> None:
    """Audit a report handed straight to a staff user (API or staff page): who exported what."""
    audit_record(acting_user=acting_user, action="report.export", obj=acting_user, account=params.scope.account,
                 after=_described(params, channel=channel))


@transaction.atomic
def report_job_request(*, params: ReportParams, acting_user) -> ReportJob:
    """Queue a report to be written to a file by a worker; returns the job to follow its progress."""
    report_get(params.name)
    job = ReportJob.objects.create(
        report=params.name, format=params.fmt, start=params.scope.start, end=params.scope.end,
        account=params.scope.account, requested_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    audit_record(acting_user=acting_user, action="report.request", obj=job, account=params.scope.account,
                 after=_described(params))
    from compliance.tasks import report_job_run

    transaction.on_commit(lambda: report_job_run.delay(job.pk))
    return job


def report_job_path(job: ReportJob) -> Path:
    return Path(settings.MEDIA_ROOT) / job.file


def report_job_execute(*, job_id: int) -> ReportJob | None:
    """Write the job's report under MEDIA_ROOT, recording progress as it goes. A finished job is left alone."""
    claimed = ReportJob.objects.filter(
        pk=job_id, status__in=[ReportJobStatus.QUEUED, ReportJobStatus.RUNNING]
    ).update(status=ReportJobStatus.RUNNING, started_at=timezone.now(), rows_done=0)
    if not claimed:
        return None
    job = ReportJob.objects.select_related("account").get(pk=job_id)
    scope = Scope(job.start, job.end, job.account)
    relative = Path(REPORTS_DIR) / f"job-{job.pk}-{job.report}.{job.format}"
    target = Path(settings.MEDIA_ROOT) / relative
    partial = target.with_suffix(target.suffix + ".partial")
    try:
        total = report_get(job.report).count(scope)
        ReportJob.objects.filter(pk=job.pk).update(rows_total=total)
        rendered = report_render(
            job.report, scope=scope, fmt=job.format,
            progress=lambda rows: ReportJob.objects.filter(pk=job.pk).update(rows_done=rows),
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as out:
            rendered.write_to(out)
        os.replace(partial, target)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        ReportJob.objects.filter(pk=job.pk).update(
            status=ReportJobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:500], finished_at=timezone.now()
        )
        logger.exception("report job %s failed", job.pk)
        raise
    ReportJob.objects.filter(pk=job.pk).update(
        status=ReportJobStatus.DONE, file=str(relative), sha256=rendered.sha256, rows_done=rendered.rows,
        rows_total=rendered.rows, finished_at=timezone.now(),
    )
    job.refresh_from_db()
    return job
