"""Date-times in API input are cleaned to UTC; what PostgreSQL or Python cannot represent is a 400, never a 500."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from compliance.reports.forms import ReportForm
from ledger.dates import UtcDateTimeField
from tests.api import api_client_for
from tests.factories import StaffFactory, fund

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("text, expected", [
    ("2024-01-01T00:00:00-15:59", datetime(2024, 1, 1, 15, 59, tzinfo=UTC)),
    ("2024-01-01T12:00:00+02:00", datetime(2024, 1, 1, 10, tzinfo=UTC)),
    ("2024-01-01T12:00:00", datetime(2024, 1, 1, 12, tzinfo=UTC)),
])
def test_a_date_time_is_cleaned_to_utc(text, expected):
    cleaned = UtcDateTimeField().clean(text)
    assert cleaned == expected
    assert cleaned.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text, code", [
    ("2024-01-01T00:00:00-18:59", "out_of_range"),
    ("2024-01-01T00:00:00+16:00", "out_of_range"),
    ("0001-01-01T00:00:00+01:00", "out_of_range"),
    ("9999-12-31T23:00:00-05:00", "out_of_range"),
    ("2024-13-01T00:00:00", "invalid"),
    ("yesterday", "invalid"),
])
def test_a_date_time_that_cannot_be_represented_in_utc_is_refused(text, code):
    with pytest.raises(ValidationError) as error:
        UtcDateTimeField().clean(text)
    assert error.value.code == code


@pytest.fixture
def alice():
    client = api_client_for()
    fund(client.account, "BTC", 1)
    return client


def test_statement_filter_queries_in_utc(alice):
    posted_at = alice.get("/api/v1/statement/").json()["results"][0]["created_at"]
    just_after = (datetime.fromisoformat(posted_at) + timedelta(seconds=1)).astimezone(
        timezone(timedelta(hours=-15, minutes=-59))).isoformat()
    assert len(alice.get("/api/v1/statement/", {"created_before": just_after}).json()["results"]) == 1
    assert alice.get("/api/v1/statement/", {"created_after": just_after}).json()["results"] == []


@pytest.mark.parametrize("created_before", ["2024-01-01T00:00:00-18:59", "0001-01-01T00:00:00+01:00"])
def test_statement_filter_postgresql_or_python_cannot_represent_is_a_400_naming_the_filter(alice, created_before):
    response = alice.get("/api/v1/statement/", {"created_before": created_before})
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("out_of_range", "created_before")


@pytest.fixture
def compliance():
    staff = StaffFactory(password=None)
    staff.user_permissions.add(Permission.objects.get(codename="export_reports"))
    client = APIClient()
    client.force_authenticate(staff)
    return client


def test_report_date_times_are_converted_to_utc():
    form = ReportForm({"report": "trade_blotter", "from": "2024-01-01T00:00:00-15:00", "to": "2024-02-01"})
    assert form.is_valid(), form.errors
    assert form.params().scope.start == datetime(2024, 1, 1, 15, tzinfo=UTC)
    assert form.params().scope.end == datetime(2024, 2, 2, tzinfo=UTC)


def test_a_report_ending_on_the_last_representable_day_is_a_400_naming_to(compliance):
    for response in (
        compliance.get("/api/v1/reports/trade_blotter/", {"from": "2024-01-01", "to": "9999-12-31"}),
        compliance.post("/api/v1/report-jobs/", {"report": "trade_blotter", "from": "2024-01-01", "to": "9999-12-31"},
                        format="json"),
    ):
        assert response.status_code == 400
        assert (response.json()["code"], response.json()["field"]) == ("out_of_range", "to")


@pytest.mark.parametrize("start", ["2024-01-01T00:00:00-18:59", "0001-01-01T00:00:00+01:00"])
def test_a_report_date_time_that_cannot_be_represented_is_a_400_naming_the_field(compliance, start):
    response = compliance.get("/api/v1/reports/trade_blotter/", {"from": start, "to": "2024-02-01"})
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("out_of_range", "from")


def test_a_report_date_still_means_the_whole_utc_day():
    form = ReportForm({"report": "trade_blotter", "from": date(2024, 3, 1), "to": "2024-03-01"})
    assert form.is_valid(), form.errors
    assert form.params().scope.end - form.params().scope.start == timedelta(days=1)
