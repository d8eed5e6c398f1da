from django.urls import path

from compliance.reports import api

urlpatterns = [
    path("reports/", api.ReportListView.as_view(), name="api-report-list"),
    path("reports/<str:name>/", api.ReportExportView.as_view(), name="api-report-export"),
    path("report-jobs/", api.ReportJobListView.as_view(), name="api-report-jobs"),
    path("report-jobs/<int:pk>/", api.ReportJobDetailView.as_view(), name="api-report-job"),
    path("report-jobs/<int:pk>/download/", api.ReportJobDownloadView.as_view(), name="api-report-job-download"),
]
