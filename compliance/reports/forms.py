"""The parameters of a report request, parsed once for the API, the staff page and the management command."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django import forms

from accounts.models import ClientAccount
from compliance.errors import Code
from compliance.reports.definitions import REPORTS, Scope
from compliance.reports.writer import FORMATS
from core.exceptions import Code as CoreCode
from ledger.dates import UtcDateTimeField, day_end, day_start


@dataclass(frozen=True)
class ReportParams:
    name: str
    scope: Scope
    fmt: str


class DateOrDateTimeField(UtcDateTimeField):
    """``2024-03-01`` (a whole UTC day) or an ISO 8601 date-time (naive means UTC), cleaned to UTC."""

    default_error_messages = {"invalid": "Use a date (2024-03-01) or an ISO 8601 date-time."}

    def to_python(self, value):
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        text = "" if value is None else str(value).strip()
        if len(text) != 10:
            return super().to_python(value)
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code=CoreCode.INVALID) from None


class ReportForm(forms.Form):
    """Dates are whole UTC days and both ends are included (``from=2024-03-01&to=2024-03-31`` is March);
    date-times give the half-open range ``from <= t < to``."""

    report = forms.ChoiceField(choices=[(r.name, r.title) for r in REPORTS.values()])
    format = forms.ChoiceField(choices=[(f, f.upper()) for f in FORMATS], required=False, initial="csv")
    account = forms.ModelChoiceField(
        queryset=ClientAccount.objects.all(), required=False, help_text="Client account id; empty for the firm."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so these two are declared here rather than as class attributes.
        self.fields["from"] = DateOrDateTimeField(help_text="First day (YYYY-MM-DD) or date-time, UTC.")
        self.fields["to"] = DateOrDateTimeField(help_text="Last day (included) or date-time (excluded), UTC.")
        self.order_fields(["report", "from", "to", "account", "format"])

    def clean(self):
        data = super().clean()
        start, end = data.get("from"), data.get("to")
        if start is None or end is None:
            return data
        data["start"] = start if isinstance(start, datetime) else day_start(start)
        try:
            data["end"] = end if isinstance(end, datetime) else day_end(end)
        except OverflowError:  # the day after 9999-12-31 is not a date
            self.add_error("to", forms.ValidationError("The last day can be 9999-12-30 at the latest.", code=Code.OUT_OF_RANGE))
            return data
        if data["start"] >= data["end"]:
            self.add_error("to", forms.ValidationError("The range must end after it starts.", code=Code.INVALID_RANGE))
        return data

    def params(self) -> ReportParams:
        """The parsed request; call after ``is_valid()``."""
        data = self.cleaned_data
        return ReportParams(
            name=data["report"], scope=Scope(data["start"], data["end"], data.get("account")),
            fmt=data.get("format") or "csv",
        )
