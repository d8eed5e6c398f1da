"""Compliance reports on a small worked example: exact CSV/JSON content, statements that reconcile (across a
snapshot too), byte-identical bodies with the SHA-256 in the header, and who may export them."""

import csv
import hashlib
import io
import json
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Deposit, FundingStatus, Withdrawal
from audit.models import AuditLog
from audit.services import audit_record
from compliance.reports import REPORTS, Scope, report_render, report_stream, writer
from compliance.reports.forms import ReportForm
from compliance.reports.services import report_job_path, report_job_request
from console.roles import COMPLIANCE, OPERATIONS, staff_groups_ensure
from ledger import selectors
from ledger import services as ledger
from ledger.models import BalanceSnapshot, LedgerAccount, Posting, Purpose, ReportJob, ReportJobStatus
from ledger.snapshots import balance_snapshot_take
from tests.api import api_client_for
from tests.factories import ClientAccountFactory, MarketFactory, StaffFactory, UserFactory, fund, ledger_account_of
from tests.trading.helpers import match, place
from trading.models import Fill

pytestmark = pytest.mark.django_db
D = Decimal
MARCH_2, MARCH_4 = datetime(2024, 3, 2, tzinfo=UTC), datetime(2024, 3, 4, tzinfo=UTC)


@contextmanager
def at(when: datetime):
    with mock.patch("django.utils.timezone.now", return_value=when):
        yield


def utc(day, hour, minute=0):
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


def withdraw(account, asset, amount, key):
    ledger.entry_post(key=key, kind="withdrawal", memo="to bank", legs=[
        ledger.debit(account, asset, D(amount)), ledger.credit(ledger.firm_account(Purpose.CUSTODY), asset, D(amount)),
    ])


@pytest.fixture
def alice():
    """Alice's BTC: +2 on 1 March, -0.5 on 2 March, +1 on 3 March, +10 on 4 March (after the range)."""
    account = ClientAccountFactory()
    funds = ledger_account_of(account)
    with at(utc(1, 10)):
        fund(funds, "BTC", "2")
    with at(utc(2, 9)):
        withdraw(funds, "BTC", "0.5", key="withdrawal:alice:1")
    with at(utc(3, 12)):
        fund(funds, "BTC", "1")
    with at(utc(4, 8)):
        fund(funds, "BTC", "10")
    return account


def body_of(chunks) -> tuple[str, str]:
    """(header line, everything after it) of a rendered report."""
    data = b"".join(chunks)
    header, _, body = data.partition(b"\n")
    return header.decode(), body.decode()


def rendered(name, *, start=MARCH_2, end=MARCH_4, account=None, fmt="csv"):
    return body_of(report_stream(name, start=start, end=end, account=account, fmt=fmt))


def csv_rows(body: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body)))


def postings_of(account) -> list[Posting]:
    return list(Posting.objects.filter(account=ledger_account_of(account)).order_by("id"))


# --- statements -------------------------------------------------------------------------------------------


def test_statement_of_an_account_in_csv(alice):
    code, client_id = ledger_account_of(alice).code, alice.pk
    _, withdrawal, deposit, _ = postings_of(alice)

    _, body = rendered("account_statement", account=alice)

    assert body == (
        "ledger_account,client_account_id,asset,line,at,posting_id,entry_id,entry_kind,memo,amount,balance\n"
        f"{code},{client_id},BTC,opening,2024-03-02T00:00:00.000000Z,,,,,,2.00000000\n"
        f"{code},{client_id},BTC,posting,2024-03-02T09:00:00.000000Z,{withdrawal.pk},{withdrawal.entry_id},"
        "withdrawal,to bank,-0.50000000,1.50000000\n"
        f"{code},{client_id},BTC,posting,2024-03-03T12:00:00.000000Z,{deposit.pk},{deposit.entry_id},deposit,,"
        "1.00000000,2.50000000\n"
        f"{code},{client_id},BTC,closing,2024-03-04T00:00:00.000000Z,,,,,0.50000000,2.50000000\n"
    )


def test_statement_in_json_says_the_same(alice):
    header, body = rendered("account_statement", account=alice, fmt="json")
    document = json.loads(header + "\n" + body)

    assert document["header"]["report"] == "account_statement" and document["header"]["rows"] == 4
    assert document["header"]["account"] == alice.pk
    assert [(r["line"], r["amount"], r["balance"]) for r in document["rows"]] == [
        ("opening", None, "2.00000000"), ("posting", "-0.50000000", "1.50000000"),
        ("posting", "1.00000000", "2.50000000"), ("closing", "0.50000000", "2.50000000"),
    ]
    assert document["columns"] == list(document["rows"][0])


def test_statement_opening_from_a_snapshot_equals_the_sum_of_postings(alice):
    without_snapshot = rendered("account_statement", account=alice)[1]
    balance_snapshot_take(day=date(2024, 3, 1))
    balance_snapshot_take(day=date(2024, 3, 2))  # after the range starts: not usable for its opening
    later = rendered("account_statement", start=utc(3, 0), end=MARCH_4, account=alice)[1]

    assert rendered("account_statement", account=alice)[1] == without_snapshot
    # The snapshot is really read: a wrong one shows through.
    BalanceSnapshot.objects.filter(day=date(2024, 3, 1), account=ledger_account_of(alice)).update(amount=D(7))
    assert ",opening,2024-03-02T00:00:00.000000Z,,,,,,7.00000000" in rendered("account_statement", account=alice)[1]
    # From 3 March the 2 March snapshot (1.5) is the opening; closing = opening + postings again.
    lines = csv_rows(later)
    assert [(r["line"], r["amount"], r["balance"]) for r in lines] == [
        ("opening", "", "1.50000000"), ("posting", "1.00000000", "2.50000000"), ("closing", "1.00000000", "2.50000000"),
    ]


def test_firm_statement_closing_is_opening_plus_postings_for_every_account_and_asset(alice):
    bob = ClientAccountFactory()
    with at(utc(2, 15)):
        fund(bob, "USD", "250.25")
        ledger.entry_post(key="fee:1", kind="fee", legs=[
            ledger.debit(ledger_account_of(bob), "USD", D("0.25")),
            ledger.credit(ledger.firm_account(Purpose.FEES), "USD", D("0.25")),
        ])
    balance_snapshot_take(day=date(2024, 3, 1))

    header, body = rendered("account_statement", fmt="json")
    rows = json.loads(header + "\n" + body)["rows"]
    groups: dict[tuple, list] = {}
    for row in rows:
        groups.setdefault((row["ledger_account"], row["asset"]), []).append(row)

    assert set(groups) == {
        (ledger_account_of(alice).code, "BTC"), ("firm:custody", "BTC"), ("firm:custody", "USD"),
        (ledger_account_of(bob).code, "USD"), ("firm:fees", "USD"),
    }
    for (code, asset), lines in groups.items():
        opening, *postings, closing = lines
        assert (opening["line"], closing["line"]) == ("opening", "closing")
        net = sum((D(p["amount"]) for p in postings), D(0))
        assert D(closing["amount"]) == net
        assert D(closing["balance"]) == D(opening["balance"]) + net
        account = LedgerAccount.objects.get(code=code)
        assert D(closing["balance"]) == selectors.balance_as_of(account=account, asset=asset,
                                                                at=MARCH_4 - timedelta(microseconds=1))


# --- determinism and the header ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_same_range_gives_byte_identical_body_and_the_header_carries_its_sha256(alice, fmt):
    first = b"".join(report_stream("ledger_journal", start=MARCH_2, end=MARCH_4, fmt=fmt,
                                   generated_at=datetime(2025, 1, 1, tzinfo=UTC)))
    with at(datetime(2025, 6, 1, tzinfo=UTC)):
        fund(alice, "ETH", "1")  # new activity outside the range changes nothing
        second = b"".join(report_stream("ledger_journal", start=MARCH_2, end=MARCH_4, fmt=fmt))

    header_1, _, body_1 = first.partition(b"\n")
    header_2, _, body_2 = second.partition(b"\n")
    assert body_1 == body_2
    digest = hashlib.sha256(body_1).hexdigest()
    if fmt == "csv":
        assert header_1.decode() == (
            f"# report=ledger_journal from=2024-03-02T00:00:00.000000Z to=2024-03-04T00:00:00.000000Z account= "
            f"format=csv rows=4 sha256={digest} generated_at=2025-01-01T00:00:00.000000Z"
        )
    else:
        meta = json.loads(header_1.decode().removesuffix(",") + "}")["header"]
        assert meta["sha256"] == digest and meta["rows"] == 4 and meta["generated_at"] == "2025-01-01T00:00:00.000000Z"
    assert header_1.split(b"generated_at")[0] == header_2.split(b"generated_at")[0]  # only the time differs


def test_empty_report_is_still_well_formed():
    header, body = rendered("trade_blotter", fmt="json")
    document = json.loads(header + "\n" + body)
    assert document["rows"] == [] and document["header"]["rows"] == 0
    assert rendered("trade_blotter")[1].startswith("fill_id,executed_at,market,")


@pytest.mark.parametrize("name", list(REPORTS))
def test_row_count_for_progress_matches_the_rows_written(alice, name, settings):
    settings.LARGE_TRANSACTION_THRESHOLDS = {"BTC": D("1")}
    with at(utc(2, 12)), transaction.atomic():
        audit_record(acting_user=None, action="test.touch", obj=alice, account=alice)
    for account in (None, alice):
        scope = Scope(utc(1, 0), MARCH_4, account)
        written = report_render(name, scope=scope, fmt="csv")
        assert REPORTS[name].count(scope) == written.rows
        assert written.rows > 0 or name in ("trade_blotter", "funding")  # no fills or funding rows here


def test_progress_is_reported_as_rows_are_written(alice, monkeypatch):
    monkeypatch.setattr(writer, "PROGRESS_EVERY", 2)
    seen = []
    result = report_render("ledger_journal", scope=Scope(MARCH_2, MARCH_4), fmt="csv", progress=seen.append)
    assert seen == [2, 4, 4] and result.rows == 4


# --- the other reports ------------------------------------------------------------------------------------


def test_ledger_journal_shows_debits_and_credits(alice):
    _, withdrawal, deposit, _ = postings_of(alice)
    rows = csv_rows(rendered("ledger_journal", account=alice)[1])

    assert [(r["posting_id"], r["entry_kind"], r["asset"], r["debit"], r["credit"], r["memo"]) for r in rows] == [
        (str(withdrawal.pk), "withdrawal", "BTC", "0.50000000", "", "to bank"),
        (str(deposit.pk), "deposit", "BTC", "", "1.00000000", ""),
    ]
    assert rows[0]["entry_key"] == "withdrawal:alice:1" and rows[0]["ledger_account"] == ledger_account_of(alice).code
    assert rows[0]["posted_at"] == "2024-03-02T09:00:00.000000Z"
    assert len(csv_rows(rendered("ledger_journal")[1])) == 4  # firm-wide: the custody legs as well


def test_large_transactions_over_the_per_asset_threshold(alice, settings):
    settings.LARGE_TRANSACTION_THRESHOLDS = {"BTC": D("1"), "USD": D("1000")}
    rows = csv_rows(rendered("large_transactions", start=utc(1, 0), end=utc(5, 0))[1])

    assert [(r["asset"], r["direction"], r["amount"], r["threshold"], r["client_account_id"]) for r in rows] == [
        ("BTC", "in", "2.00000000", "1.00000000", str(alice.pk)),
        ("BTC", "in", "1.00000000", "1.00000000", str(alice.pk)),
        ("BTC", "in", "10.00000000", "1.00000000", str(alice.pk)),
    ]
    settings.LARGE_TRANSACTION_THRESHOLDS = {"BTC": D("0.5")}
    rows = csv_rows(rendered("large_transactions", account=alice)[1])
    assert [(r["direction"], r["amount"]) for r in rows] == [("out", "0.50000000"), ("in", "1.00000000")]


def test_deposits_and_withdrawals_in_time_order(alice):
    bob = ClientAccountFactory()
    with at(utc(2, 8)):
        deposit = Deposit.objects.create(account=alice, asset_id="USD", amount=D("1500.5"), tx_hash="",
                                         bank_reference="REF-1")
    with at(utc(2, 7)):
        withdrawal = Withdrawal.objects.create(account=bob, asset_id="BTC", amount=D("0.1"),
                                               blockchain_address="bc1qexample", status=FundingStatus.REQUESTED)
    with at(utc(5, 7)):
        Deposit.objects.create(account=alice, asset_id="USD", amount=D("1"))  # outside the range

    rows = csv_rows(rendered("funding")[1])

    assert [(r["type"], r["id"], r["client_account_id"], r["asset"], r["amount"], r["status"]) for r in rows] == [
        ("withdrawal", str(withdrawal.pk), str(bob.pk), "BTC", "0.10000000", "requested"),
        ("deposit", str(deposit.pk), str(alice.pk), "USD", "1500.50", "requested"),
    ]
    assert rows[1]["bank_reference"] == "REF-1" and rows[0]["blockchain_address"] == "bc1qexample"
    assert [r["type"] for r in csv_rows(rendered("funding", account=alice)[1])] == ["deposit"]


def test_audit_log_with_canonical_before_and_after(alice):
    officer = StaffFactory(username="officer")
    with at(utc(3, 9)), transaction.atomic():
        entry = audit_record(acting_user=officer, action="account.freeze", obj=alice, account=alice,
                             before={"status": "active", "can_trade": True}, after={"status": "frozen"})
    rows = csv_rows(rendered("audit_log", account=alice)[1])

    assert [(r["audit_id"], r["at"], r["actor_label"], r["action"], r["object_id"], r["before"], r["after"])
            for r in rows] == [
        (str(entry.pk), "2024-03-03T09:00:00.000000Z", "officer", "account.freeze", str(alice.pk),
         '{"can_trade":true,"status":"active"}', '{"status":"frozen"}'),
    ]


def test_trade_blotter_has_both_sides_fees_and_timestamps():
    buyer, seller = ClientAccountFactory(), ClientAccountFactory()
    market = MarketFactory()
    fund(buyer, "USD", "1000")
    fund(seller, "BTC", "1")
    with at(utc(2, 10)):
        resting = place(seller, market, "sell", size="0.5", price="100", client_order_id="s-1")
    with at(utc(2, 11)):
        taking = place(buyer, market, "buy", size="0.4", price="101", client_order_id="b-1")
        match(market)
    fill = Fill.objects.get()

    rows = csv_rows(rendered("trade_blotter")[1])

    assert rows == [{
        "fill_id": str(fill.pk), "executed_at": "2024-03-02T11:00:00.000000Z", "market": "BTC-USD",
        "base_asset": "BTC", "quote_asset": "USD", "price": "100.00", "size": "0.40000000", "quote_amount": "40.00",
        "aggressor_side": "buy",
        "maker_account_id": str(seller.pk), "maker_order_id": str(resting.pk), "maker_client_order_id": "s-1",
        "maker_side": "sell", "maker_order_placed_at": "2024-03-02T10:00:00.000000Z", "maker_fee": "0.04",
        "taker_account_id": str(buyer.pk), "taker_order_id": str(taking.pk), "taker_client_order_id": "b-1",
        "taker_side": "buy", "taker_order_placed_at": "2024-03-02T11:00:00.000000Z", "taker_fee": "0.08",
        "buyer_quote": "40.08", "seller_quote": "39.96", "entry_id": str(fill.entry_id),
        "trade_type": "fill", "trade_id": str(fill.pk), "counterparty": "", "maker_metadata": "",
        "taker_metadata": "",
    }]
    assert csv_rows(rendered("trade_blotter", account=seller)[1]) == rows
    assert csv_rows(rendered("trade_blotter", account=ClientAccountFactory())[1]) == []


def test_text_that_a_spreadsheet_would_run_is_neutralised(alice):
    with at(utc(3, 13)):
        withdraw(ledger_account_of(alice), "BTC", "0.1", key="=HYPERLINK(\"http://evil\")")
    rows = csv_rows(rendered("ledger_journal", account=alice)[1])
    assert rows[-1]["entry_key"] == "'=HYPERLINK(\"http://evil\")"


# --- parameters -------------------------------------------------------------------------------------------


def test_dates_are_whole_days_with_both_ends_included():
    form = ReportForm({"report": "audit_log", "from": "2024-03-02", "to": "2024-03-03"})
    assert form.is_valid(), form.errors
    assert (form.params().scope.start, form.params().scope.end) == (MARCH_2, MARCH_4)
    form = ReportForm({"report": "audit_log", "from": "2024-03-02T06:00:00+02:00", "to": "2024-03-02T12:00"})
    assert form.is_valid(), form.errors
    assert (form.params().scope.start, form.params().scope.end) == (utc(2, 4), utc(2, 12))
    assert form.params().fmt == "csv"


# --- who may export ---------------------------------------------------------------------------------------


def staff_in(group: str):
    staff_groups_ensure()
    user = StaffFactory()
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def compliance_officer():
    return staff_in(COMPLIANCE)


@pytest.fixture
def operator():
    return staff_in(OPERATIONS)


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_api_streams_the_report_to_compliance(alice, compliance_officer):
    response = api_as(compliance_officer).get(
        f"/api/v1/reports/account_statement/?from=2024-03-02&to=2024-03-03&account={alice.pk}&format=csv")

    assert response.status_code == 200 and response.streaming
    header, body = body_of(response.streaming_content)
    assert body == rendered("account_statement", account=alice)[1]
    assert response["X-Content-SHA256"] == hashlib.sha256(body.encode()).hexdigest()
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    exported = AuditLog.objects.get(action="report.export")
    assert exported.actor == compliance_officer and exported.account == alice
    assert exported.after["report"] == "account_statement" and exported.after["channel"] == "api"


def test_api_lists_the_reports(compliance_officer):
    response = api_as(compliance_officer).get("/api/v1/reports/")
    assert response.status_code == 200
    assert [r["name"] for r in response.json()] == [
        "trade_blotter", "ledger_journal", "account_statement", "funding", "large_transactions", "audit_log"]


def test_api_refuses_staff_without_the_export_permission_and_clients(alice, operator):
    url = "/api/v1/reports/audit_log/?from=2024-03-01&to=2024-03-02"
    assert api_as(operator).get(url).status_code == 403
    assert api_as(operator).get("/api/v1/report-jobs/").status_code == 403
    client_key = api_client_for(account=alice)
    response = client_key.get(url)
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert APIClient().get(url).status_code in (401, 403)
    assert not AuditLog.objects.filter(action="report.export").exists()


def test_api_rejects_bad_parameters_with_the_field_named(compliance_officer):
    web = api_as(compliance_officer)
    response = web.get("/api/v1/reports/audit_log/?from=2024-03-05&to=2024-03-01")
    assert (response.status_code, response.json()["field"], response.json()["code"]) == (400, "to", "invalid_range")
    response = web.get("/api/v1/reports/audit_log/?from=2024-03-01&to=2024-03-02&format=xlsx")
    assert (response.status_code, response.json()["field"]) == (400, "format")
    response = web.get("/api/v1/reports/nope/?from=2024-03-01&to=2024-03-02")
    assert (response.status_code, response.json()["field"]) == (400, "report")
    response = web.get("/api/v1/reports/audit_log/?from=yesterday&to=2024-03-02&account=999999")
    assert response.status_code == 400 and response.json()["field"] in ("from", "account")


def test_staff_page_is_for_compliance_only(compliance_officer, operator):
    web = Client()
    assert web.get("/admin/reports/").status_code == 302  # to the admin login
    web.force_login(UserFactory())
    assert web.get("/admin/reports/").status_code == 302
    web.force_login(operator)
    assert web.get("/admin/reports/").status_code == 403
    web.force_login(compliance_officer)
    page = web.get("/admin/reports/?report=account_statement&account=")
    assert page.status_code == 200
    assert b"Compliance reports" in page.content and b'value="account_statement" selected' in page.content


def test_staff_page_downloads_a_report_now(alice, compliance_officer):
    web = Client()
    web.force_login(compliance_officer)
    response = web.post("/admin/reports/", {"report": "ledger_journal", "from": "2024-03-02", "to": "2024-03-03",
                                            "account": alice.pk, "format": "json", "action": "download"})
    assert response.status_code == 200
    assert body_of(response.streaming_content)[1] == rendered("ledger_journal", account=alice, fmt="json")[1]

    invalid = web.post("/admin/reports/", {"report": "ledger_journal", "from": "2024-03-03", "to": "2024-03-01",
                                           "action": "download"})
    assert invalid.status_code == 400 and b"The range must end after it starts." in invalid.content


def test_staff_page_runs_a_background_job_and_offers_the_file(alice, compliance_officer, settings, tmp_path,
                                                               django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    web = Client()
    web.force_login(compliance_officer)
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post("/admin/reports/", {"report": "account_statement", "from": "2024-03-02",
                                                "to": "2024-03-03", "account": alice.pk, "action": "job"})
    job = ReportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/reports/jobs/{job.pk}/"
    page = web.get(response["Location"])
    assert b"Done" in page.content and job.sha256.encode() in page.content
    download = web.get(f"/admin/reports/jobs/{job.pk}/download/")
    assert body_of(download.streaming_content)[1] == rendered("account_statement", account=alice)[1]


# --- command and background job ---------------------------------------------------------------------------


def test_management_command_writes_the_file(alice, tmp_path):
    target = tmp_path / "statement.json"
    call_command("report", "account_statement", "--from", "2024-03-02", "--to", "2024-03-03",
                 "--account", str(alice.pk), "--format", "json", "--output", str(target))

    header, _, body = target.read_bytes().partition(b"\n")
    assert body.decode() == rendered("account_statement", account=alice, fmt="json")[1]
    assert json.loads(header.decode().removesuffix(",") + "}")["header"]["sha256"] == hashlib.sha256(body).hexdigest()


def test_celery_job_writes_the_file_and_completes(alice, compliance_officer, settings, tmp_path,
                                                  django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    form = ReportForm({"report": "ledger_journal", "from": "2024-03-01", "to": "2024-03-04", "format": "csv"})
    assert form.is_valid()

    with django_capture_on_commit_callbacks(execute=True):
        job = report_job_request(params=form.params(), acting_user=compliance_officer)

    job.refresh_from_db()
    assert job.status == ReportJobStatus.DONE
    assert (job.rows_done, job.rows_total, job.percent) == (8, 8, 100)
    path = report_job_path(job)
    assert path.parent == tmp_path / "reports" and not list(tmp_path.glob("reports/*.partial"))
    header, _, body = path.read_bytes().partition(b"\n")
    assert hashlib.sha256(body).hexdigest() == job.sha256 and f"sha256={job.sha256}".encode() in header
    assert AuditLog.objects.get(action="report.request").object_id == str(job.pk)


def test_report_jobs_over_the_api(alice, compliance_officer, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    web = api_as(compliance_officer)
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post("/api/v1/report-jobs/", {"report": "audit_log", "from": "2024-03-01",
                                                     "to": "2024-03-31", "format": "json"}, format="json")
    assert response.status_code == 202
    job_id = response.json()["id"]

    detail = web.get(f"/api/v1/report-jobs/{job_id}/").json()
    assert detail["status"] == "done" and detail["percent"] == 100 and detail["from"].startswith("2024-03-01")
    download = web.get(detail["download_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content).partition(b"\n")[2].decode() == rendered(
        "audit_log", start=utc(1, 0), end=datetime(2024, 4, 1, tzinfo=UTC), fmt="json")[1]


def test_a_job_not_yet_done_has_no_file(compliance_officer):
    job = ReportJob.objects.create(report="audit_log", format="csv", start=MARCH_2, end=MARCH_4)
    response = api_as(compliance_officer).get(f"/api/v1/report-jobs/{job.pk}/download/")
    assert (response.status_code, response.json()["code"]) == (409, "report_not_ready")
