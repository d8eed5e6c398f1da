"""Compliance report endpoints for staff with the ``accounts.export_reports`` permission (never client keys)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from accounts.models import ApiKey
from compliance.reports.definitions import REPORTS
from compliance.reports.forms import ReportForm, ReportParams
from compliance.reports.http import may_export_reports, report_job_file, streaming_report
from compliance.reports.services import report_export_record, report_job_request
from compliance.reports.writer import FORMATS
from core.api.serializers import ErrorSerializer
from core.staff_auth import second_factor_missing
from ledger.models import ReportJob, ReportJobStatus


class CanExportReports(BasePermission):
    """Staff with the export permission, signed in by session (with the second factor their role needs) or
    token; a client API key never qualifies."""

    message = "Reports are for compliance staff with the export_reports permission."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey) or not may_export_reports(request.user):
            return False
        return request.auth is not None or not second_factor_missing(request.user)  # auth None: a session


class ReportApiView(APIView):
    permission_classes = [CanExportReports]

    def perform_content_negotiation(self, request, force=False):
        # ``?format=csv|json`` picks the report's format, not a DRF renderer; errors are always JSON.
        return JSONRenderer(), JSONRenderer.media_type


def parsed(data: dict) -> ReportParams:
    form = ReportForm(data)
    if not form.is_valid():
        raise ValidationError({
            field: [ErrorDetail(e["message"], code=e["code"]) for e in errors]
            for field, errors in form.errors.get_json_data().items()
        })
    return form.params()


REPORT_QUERY = [
    OpenApiParameter("from", OpenApiTypes.STR, required=True,
                     description="First UTC day (YYYY-MM-DD, included) or ISO 8601 date-time (included)."),
    OpenApiParameter("to", OpenApiTypes.STR, required=True,
                     description="Last UTC day (YYYY-MM-DD, included) or ISO 8601 date-time (excluded)."),
    OpenApiParameter("account", OpenApiTypes.INT, description="Client account id; omit for the whole firm."),
    OpenApiParameter("format", OpenApiTypes.STR, enum=list(FORMATS), description="csv (default) or json."),
]


class ReportListView(ReportApiView):
    @extend_schema(responses=inline_serializer("ReportDefinition", many=True, fields={
        "name": serializers.CharField(), "title": serializers.CharField(), "description": serializers.CharField(),
        "columns": serializers.ListField(child=serializers.CharField()),
        "url": serializers.URLField(),
    }))
    def get(self, request):
        return Response([
            {"name": r.name, "title": r.title, "description": r.description, "columns": list(r.columns),
             "url": reverse("api-report-export", args=[r.name], request=request)}
            for r in REPORTS.values()
        ])


class ReportExportView(ReportApiView):
    @extend_schema(
        parameters=REPORT_QUERY,
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/json"): OpenApiTypes.OBJECT,
                   400: ErrorSerializer},
        description="The report as a file. Line 1 is a header with the row count, the SHA-256 of every byte after "
                    "line 1 (also in the X-Content-SHA256 header) and the generation time.",
    )
    def get(self, request, name: str):
        params = parsed({**request.query_params.dict(), "report": name})
        report_export_record(params=params, acting_user=request.user, channel="api")
        return streaming_report(params)


class ReportJobSerializer(serializers.ModelSerializer):
    to = serializers.DateTimeField(source="end")
    percent = serializers.IntegerField(allow_null=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ReportJob
        fields = ["id", "report", "format", "from", "to", "account", "status", "rows_total", "rows_done", "percent",
                  "sha256", "error", "created_at", "started_at", "finished_at", "download_url"]
        read_only_fields = fields

    def get_download_url(self, job: ReportJob) -> str | None:
        if job.status != ReportJobStatus.DONE:
            return None
        return reverse("api-report-job-download", args=[job.pk], request=self.context.get("request"))


# "from" is a Python keyword, so it cannot be declared in the class body.
ReportJobSerializer._declared_fields["from"] = serializers.DateTimeField(source="start", read_only=True)


class ReportJobListView(ReportApiView):
    @extend_schema(responses=ReportJobSerializer(many=True))
    def get(self, request):
        jobs = ReportJob.objects.all()[:50]
        return Response(ReportJobSerializer(jobs, many=True, context={"request": request}).data)

    @extend_schema(
        request=inline_serializer("ReportJobRequest", fields={
            "report": serializers.ChoiceField(choices=list(REPORTS)),
            "from": serializers.CharField(), "to": serializers.CharField(),
            "account": serializers.IntegerField(required=False, allow_null=True),
            "format": serializers.ChoiceField(choices=list(FORMATS), required=False),
        }),
        responses={202: ReportJobSerializer},
    )
    def post(self, request):
        job = report_job_request(params=parsed(dict(request.data.items())), acting_user=request.user)
        job.refresh_from_db()
        return Response(ReportJobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class ReportJobDetailView(ReportApiView):
    @extend_schema(responses=ReportJobSerializer)
    def get(self, request, pk: int):
        job = get_object_or_404(ReportJob, pk=pk)
        return Response(ReportJobSerializer(job, context={"request": request}).data)


class ReportJobDownloadView(ReportApiView):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/json"): OpenApiTypes.OBJECT,
                              409: ErrorSerializer})
    def get(self, request, pk: int):
        return report_job_file(get_object_or_404(ReportJob, pk=pk))
