"""Ledger background jobs: end-of-day balance snapshots. Thin: arguments in, call a service."""

from __future__ import annotations

from datetime import date

from celery import shared_task

from ledger.snapshots import balance_snapshot_take as snapshot_take
from ledger.snapshots import last_complete_day


@shared_task(name="ledger.tasks.balance_snapshot_take", time_limit=3600, soft_time_limit=3500)
def balance_snapshot_take(day: str | None = None) -> int:
    """Snapshot the given ISO day, by default the UTC day that just ended. Returns the rows added."""
    return snapshot_take(day=date.fromisoformat(day) if day else last_complete_day())
