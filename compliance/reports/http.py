"""HTTP answers shared by the report API and the staff page: who may export, a streamed report, a job's file."""

from __future__ import annotations

from django.http import FileResponse, StreamingHttpResponse

from compliance.errors import Code
from compliance.reports.forms import ReportParams
from compliance.reports.services import report_job_path
from compliance.reports.writer import FORMATS, report_filename, report_render
from core.exceptions import Conflict
from ledger.models import ReportJob, ReportJobStatus

EXPORT_PERMISSION = "accounts.export_reports"


def may_export_reports(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff
                and user.has_perm(EXPORT_PERMISSION))


def streaming_report(params: ReportParams) -> StreamingHttpResponse:
    """Render the report (one read of the database, spooled and hashed) and stream it with its header."""
    rendered = report_render(params.name, scope=params.scope, fmt=params.fmt)
    response = StreamingHttpResponse(rendered.chunks(), content_type=FORMATS[params.fmt])
    filename = report_filename(params.name, scope=params.scope, fmt=params.fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-SHA256"] = rendered.sha256
    response["X-Report-Rows"] = str(rendered.rows)
    return response


def report_job_file(job: ReportJob) -> FileResponse:
    if job.status != ReportJobStatus.DONE:
        raise Conflict(f"Report job #{job.pk} is {job.status}; its file is not ready.", code=Code.REPORT_NOT_READY)
    response = FileResponse(open(report_job_path(job), "rb"), as_attachment=True,
                            filename=f"{job.report}-{job.pk}.{job.format}", content_type=FORMATS[job.format])
    response["X-Content-SHA256"] = job.sha256
    return response
