"""manage.py snapshot_balances [--day YYYY-MM-DD]: end-of-day balance snapshot (default: yesterday, UTC)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import DomainError
from ledger.snapshots import balance_snapshot_take, last_complete_day


class Command(BaseCommand):
    help = "Write the end-of-day balance snapshot of a UTC day (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--day", type=date.fromisoformat, help="UTC day, default yesterday.")

    def handle(self, *args, day, **options):
        day = day or last_complete_day()
        try:
            added = balance_snapshot_take(day=day)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Snapshot of {day}: {added} rows added."))
