"""The clock of quotes and conversions, one function so tests can move time: ``monkeypatch.setattr(clock,
"now", ...)`` decides when a quote was made and whether it has expired, to the microsecond."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
