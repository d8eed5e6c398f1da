"""UTC day boundaries. A business day is a UTC calendar day; "the end of day D" is midnight starting D + 1."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.utils.dateparse import parse_datetime
from django_filters import rest_framework as filters


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


def parse_utc_datetime(text: str) -> datetime:
    """An ISO 8601 date-time as an aware UTC datetime (naive means UTC).

    Converting to UTC is what keeps an offset PostgreSQL refuses (beyond +-15:59, valid in Python) out of queries.
    Raises ``ValueError`` for text that is not a date-time and ``OverflowError`` for one whose UTC instant falls
    outside the years 1-9999.
    """
    parsed = parse_datetime(text)
    if parsed is None:
        raise ValueError(f"not an ISO 8601 date-time: {text!r}")
    return as_utc(parsed)


def as_utc(at: datetime) -> datetime:
    """``at`` as an aware UTC datetime (naive means UTC); ``OverflowError`` if that is outside the years 1-9999."""
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


class UtcDateTimeField(forms.Field):
    """An ISO 8601 date-time cleaned to aware UTC; shared by the API filters and the report parameters."""

    default_error_messages = {
        "invalid": "Use an ISO 8601 date-time, e.g. 2024-03-01T12:00:00Z.",
        "out_of_range": "This date-time is outside the years 1-9999 in UTC.",
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return as_utc(value) if isinstance(value, datetime) else parse_utc_datetime(str(value).strip())
        except OverflowError:
            raise forms.ValidationError(self.error_messages["out_of_range"], code="out_of_range") from None
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    """A date-time API filter that queries in UTC and answers 400 for what PostgreSQL cannot store."""

    field_class = UtcDateTimeField
