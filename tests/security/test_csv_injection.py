"""Issue 18, finding 8: "CSV exports neutralise =, +, @ but not - (`-2+3+cmd|' /C calc'!A0` comes out raw)."

Every text cell starting with one of OWASP's characters (= + - @ tab CR) gets a leading quote; numbers, negative
amounts included, are written as they are.
"""

import csv
import io

import pytest
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Withdrawal
from compliance.reports.writer import CsvEncoder
from tests.api import api_client_for
from tests.factories import allow_destination, fund

pytestmark = pytest.mark.django_db
DDE = "-2+3+cmd|' /C calc'!A0"


@pytest.mark.parametrize("text", ["=1+1", "+1+cmd|' /C calc'!A0", DDE, "@SUM(A1:A2)", "\t=1+1", "\r=1+1"])
def test_every_formula_start_is_neutralised(text):
    assert CsvEncoder._cell(text) == "'" + text


@pytest.mark.parametrize("value", ["-12.50", "-0.000001", "12", "0", "-7"])
def test_numbers_are_written_as_they_are(value):
    assert CsvEncoder._cell(value) == value


def report_rows(client, name: str, **params) -> list[dict]:
    response = client.get(f"/api/v1/reports/{name}/", {"from": "2020-01-01", "to": "2030-01-01", "format": "csv",
                                                        **params})
    body = b"".join(response.streaming_content).decode().split("\n", 1)[1]  # after the header line
    return list(csv.DictReader(io.StringIO(body)))


def test_a_client_supplied_reference_reaches_compliance_neutralised(compliance_officer, supervisor, operator):
    attacker = api_client_for()
    fund(attacker.account, "USD", "1000")
    allow_destination(attacker.account, "USD", DDE)  # the client's own address-book entry carries the formula
    created = attacker.post("/api/v1/withdrawals/", {"asset": "USD", "amount": "100", "bank_reference": DDE},
                            format="json", HTTP_IDEMPOTENCY_KEY="dde-1")
    assert created.status_code == 201, created.content
    withdrawal = Withdrawal.objects.get()
    services.withdrawal_approve(withdrawal=withdrawal, acting_user=supervisor)
    services.withdrawal_complete(withdrawal=withdrawal, acting_user=operator)
    compliance = APIClient()
    compliance.force_login(compliance_officer)

    funding = report_rows(compliance, "funding")
    statement = report_rows(compliance, "account_statement", account=attacker.account.pk)

    assert [row["bank_reference"] for row in funding] == ["'" + DDE]
    assert [(row["line"], row["amount"], row["balance"]) for row in statement] == [
        ("opening", "", "0.00"), ("posting", "1000.00", "1000.00"), ("posting", "-100.00", "900.00"),
        ("closing", "900.00", "900.00")]  # a negative amount is a number: written as it is
