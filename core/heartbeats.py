"""Heartbeats of background loops, read by ``/readyz`` and ``/metrics``.

``heartbeat_record("matcher")`` runs in the beat's ``sweep_markets`` task (every ``SWEEP_INTERVAL_SECONDS``),
so a fresh matcher heartbeat proves the whole loop turns: the beat schedules, the broker delivers and a worker
runs tasks against the database. One UPDATE per sweep, nothing on the order path.
"""

from __future__ import annotations

from django.utils import timezone

from core.models import Heartbeat

MATCHER = "matcher"


def heartbeat_record(name: str) -> None:
    now = timezone.now()
    if not Heartbeat.objects.filter(name=name).update(beat_at=now):
        Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": now})


def heartbeat_ages() -> dict[str, float]:
    """Seconds since each loop's last heartbeat."""
    now = timezone.now()
    return {name: (now - at).total_seconds() for name, at in Heartbeat.objects.values_list("name", "beat_at")}
