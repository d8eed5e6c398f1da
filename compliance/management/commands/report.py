"""manage.py report <name> --from 2024-03-01 --to 2024-03-31 [--account 7] --format csv|json --output FILE"""

import sys

from django.core.management.base import BaseCommand, CommandError

from compliance.reports.definitions import REPORTS
from compliance.reports.forms import ReportForm
from compliance.reports.writer import FORMATS, report_render


class Command(BaseCommand):
    help = ("Write a compliance report. Dates are whole UTC days, both included; ISO date-times give "
            "from <= t < to. Line 1 is a header with the SHA-256 of every byte after it.")

    def add_arguments(self, parser):
        parser.add_argument("report", choices=list(REPORTS))
        parser.add_argument("--from", dest="start", required=True)
        parser.add_argument("--to", dest="end", required=True)
        parser.add_argument("--account", help="Client account id; omit for the whole firm.")
        parser.add_argument("--format", dest="fmt", choices=list(FORMATS), default="csv")
        parser.add_argument("--output", default="-", help="File to write; '-' (default) is standard output.")

    def handle(self, *args, report, start, end, account, fmt, output, **options):
        form = ReportForm({"report": report, "from": start, "to": end, "account": account or "", "format": fmt})
        if not form.is_valid():
            raise CommandError("; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()))
        params = form.params()
        rendered = report_render(params.name, scope=params.scope, fmt=params.fmt)
        if output == "-":
            rendered.write_to(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            with open(output, "wb") as out:
                rendered.write_to(out)
            self.stderr.write(f"{output}: {rendered.rows} rows, sha256 {rendered.sha256}")
