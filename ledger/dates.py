"""UTC day boundaries. A business day is a UTC calendar day; "the end of day D" is midnight starting D + 1."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.utils.dateparse import parse_datetime
from django_filters import rest_framework as filters

from core.exceptions import Code as CoreCode
from ledger.errors import Code


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

    Raises ``ValueError`` for text that is not a date-time and ``OverflowError`` for one ``as_utc`` refuses.
    """
    parsed = parse_datetime(text)
    if parsed is None:
        raise ValueError(f"not an ISO 8601 date-time: {text!r}")
    return as_utc(parsed)


# PostgreSQL refuses larger offsets ("time zone displacement out of range"); no real time zone comes near them.
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


def as_utc(at: datetime) -> datetime:
    """``at`` as an aware UTC datetime (naive means UTC).

    ``OverflowError`` for an offset beyond +-15:59 (valid in Python, refused by PostgreSQL) or a UTC instant
    outside the years 1-9999.
    """
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    if abs(at.utcoffset()) > MAX_UTC_OFFSET:
        raise OverflowError(f"UTC offset beyond +-15:59: {at.utcoffset()}")
    return at.astimezone(UTC)


class UtcDateTimeField(forms.Field):
    """An ISO 8601 date-time cleaned to aware UTC; shared by the API filters and the report parameters."""

    default_error_messages = {
        CoreCode.INVALID: "Use an ISO 8601 date-time, e.g. 2024-03-01T12:00:00Z.",
        Code.OUT_OF_RANGE: "Use a UTC offset within +-15:59 and a time within the years 1-9999 in UTC.",
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return as_utc(value) if isinstance(value, datetime) else parse_utc_datetime(str(value).strip())
        except OverflowError:
            raise forms.ValidationError(self.error_messages[Code.OUT_OF_RANGE], code=Code.OUT_OF_RANGE) from None
        except ValueError:
            raise forms.ValidationError(self.error_messages[CoreCode.INVALID], code=CoreCode.INVALID) from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    """A date-time API filter that queries in UTC and answers 400 for what PostgreSQL cannot store."""

    field_class = UtcDateTimeField
