"""The clock of quotes, conversions, fills and the ticker, one function so tests can move time:
``monkeypatch.setattr(clock, "now", ...)`` decides when a quote was made and whether it has expired, to the
microsecond, when a matcher batch's fills happen (and so which candles they fall in), and what "the last 24 hours"
of the ticker are."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
