"""UTC day boundaries. A business day is a UTC calendar day; "the end of day D" is midnight starting D + 1."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_end(day: date) -> datetime:
    """The first instant after ``day``: a day covers ``day_start(day) <= t < day_end(day)``."""
    return day_start(day + timedelta(days=1))


def utc_date(at: datetime) -> date:
    return at.astimezone(UTC).date()


def iso_utc(at: datetime) -> str:
    """A fixed-width UTC timestamp with microseconds, the same text for the same instant on every run."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
