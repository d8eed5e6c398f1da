"""Compliance reports: trade blotter, ledger journal, account statements, deposits and withdrawals, large
transactions, audit log. CSV or JSON, streamed, reproducible, with the SHA-256 of the content in the header.

Entry points: ``report_stream(name, start=, end=, account=, fmt=)`` (bytes for a streaming response),
``report_render`` (to write a file), ``compliance.reports.services.report_job_request`` (background job with
progress), the ``manage.py report`` command, ``/api/v1/reports/<name>/`` and the staff page ``/admin/reports/``.
"""

from compliance.reports.definitions import REPORTS, Scope
from compliance.reports.writer import report_render, report_stream

__all__ = ["REPORTS", "Scope", "report_render", "report_stream"]
