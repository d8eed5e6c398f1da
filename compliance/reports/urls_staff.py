from django.urls import path

from compliance import views as compliance_views
from compliance.reports import views

urlpatterns = [
    path("", views.reports_index, name="admin-reports"),
    path("jobs/<int:pk>/", views.report_job_detail, name="admin-report-job"),
    path("jobs/<int:pk>/download/", views.report_job_download, name="admin-report-job-download"),
    path("reconciliation/run/", compliance_views.reconciliation_run_now, name="admin-reconciliation-run"),
]
