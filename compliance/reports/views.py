"""The staff page of compliance reports, under the admin: download a report now or have a worker write it."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse

from compliance.reports.definitions import REPORTS
from compliance.reports.forms import ReportForm
from compliance.reports.http import EXPORT_PERMISSION, report_job_file, streaming_report
from compliance.reports.services import report_export_record, report_job_request
from core.staff_auth import console_staff_required
from ledger.models import ReconciliationRun, ReportJob

RECENT = 20


def compliance_required(view):
    return console_staff_required(permission_required(EXPORT_PERMISSION, raise_exception=True)(view))


def _page(request, template: str, context: dict, status: int = 200) -> TemplateResponse:
    return TemplateResponse(request, template, {**admin.site.each_context(request), **context}, status=status)


@compliance_required
def reports_index(request):
    """GET shows the form (query parameters pre-fill it: ``?report=account_statement&account=7``); POST either
    streams the report (``action=download``) or queues a background job (``action=job``)."""
    if request.method == "POST":
        form = ReportForm(request.POST)
        if form.is_valid():
            params = form.params()
            if request.POST.get("action") == "job":
                job = report_job_request(params=params, acting_user=request.user)
                messages.success(request, f"Report job #{job.pk} queued.")
                return redirect("admin-report-job", pk=job.pk)
            report_export_record(params=params, acting_user=request.user, channel="admin")
            return streaming_report(params)
        status = 400
    else:
        form = ReportForm(initial={"format": "csv", **request.GET.dict()})
        status = 200
    return _page(request, "admin/reports/index.html", {
        "title": "Compliance reports",
        "form": form,
        "reports": REPORTS.values(),
        "jobs": ReportJob.objects.select_related("requested_by")[:RECENT],
        "runs": ReconciliationRun.objects.prefetch_related("breaks")[:5],
        "can_reconcile": request.user.has_perm("ledger.add_reconciliationrun"),
    }, status=status)


@compliance_required
def report_job_detail(request, pk: int):
    job = get_object_or_404(ReportJob, pk=pk)
    return _page(request, "admin/reports/job.html", {"title": f"Report job #{job.pk}", "job": job})


@compliance_required
def report_job_download(request, pk: int):
    return report_job_file(get_object_or_404(ReportJob, pk=pk))
