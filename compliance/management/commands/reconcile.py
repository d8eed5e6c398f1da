"""manage.py reconcile: run every reconciliation check now; exits non-zero when the books do not reconcile."""

from django.core.management.base import BaseCommand, CommandError

from compliance.reconciliation import reconciliation_run


class Command(BaseCommand):
    help = "Recompute balances, holds, trial balance and custody from the ledger and record any break."

    def handle(self, *args, **options):
        run = reconciliation_run()
        for b in run.breaks.all():
            self.stdout.write(f"BREAK {b.check_name}: {b.detail}")
        if not run.ok:
            raise CommandError(f"Reconciliation run #{run.pk} found {run.breaks.count()} break(s).")
        self.stdout.write(self.style.SUCCESS(f"Reconciliation run #{run.pk}: the books reconcile."))
