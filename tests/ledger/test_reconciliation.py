"""Reconciliation: clean books reconcile; each kind of injected drift is caught by the right check and alerted."""

import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import FundingStatus, Withdrawal
from audit.models import AuditLog
from compliance import reconciliation as rec
from compliance.reconciliation import reconciliation_run, reconciliation_schedule
from console.roles import COMPLIANCE, OPERATIONS, staff_groups_ensure
from ledger import services as ledger
from ledger.models import BalanceSnapshot, Purpose, ReconciliationRun
from ledger.snapshots import balance_snapshot_take
from tests.factories import ClientAccountFactory, MarketFactory, StaffFactory, fund, ledger_account_of
from tests.trading.helpers import match, place
from trading.models import Order, OrderStatus

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def alice():
    return ClientAccountFactory()


def breaks_of(run):
    return [(b.check_name, b.account_id, b.asset_id, b.expected, b.actual) for b in run.breaks.all()]


def busy_books(alice):
    """Deposits, a partially filled trade with an order left resting, a pending withdrawal, a snapshot."""
    bob = ClientAccountFactory()
    market = MarketFactory()
    with mock.patch("django.utils.timezone.now", return_value=datetime(2024, 3, 1, 12, tzinfo=UTC)):
        fund(alice, "USD", "10000")
        fund(bob, "BTC", "2")
    balance_snapshot_take(day=date(2024, 3, 1))
    place(bob, market, "sell", size="1", price="100")
    place(alice, market, "buy", size="0.4", price="100")
    place(alice, market, "buy", size="3", price="90")  # rests, with its hold
    match(market)
    hold = ledger.hold_place(key="withdrawal:test", account=ledger_account_of(alice), asset="USD", amount=D("500"))
    Withdrawal.objects.create(account=alice, asset_id="USD", amount=D("500"), hold=hold, bank_reference="GB00")
    return market


def test_busy_but_correct_books_reconcile(alice):
    busy_books(alice)
    assert Order.objects.filter(status=OrderStatus.PARTIALLY_FILLED).exists()

    run = reconciliation_run()

    assert breaks_of(run) == []
    assert run.ok is True and run.finished_at is not None
    assert run.checks[rec.TRIAL_BALANCE] == {"BTC": "0", "USD": "0"}
    assert run.checks[rec.CUSTODY]["BTC"] == {"custody": "2", "clients": "2", "owed_less_expenses": "2"}
    assert run.checks[rec.SNAPSHOT]["day"] == "2024-03-01"
    assert AuditLog.objects.filter(action="reconciliation.run", object_id=str(run.pk)).exists()


def test_drift_of_the_balance_table_is_caught_and_alerted(alice, caplog):
    fund(alice, "BTC", "1")
    client = ledger_account_of(alice)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_balance SET amount = amount + 0.1 WHERE account_id = %s AND asset_id = 'BTC'",
                       [client.pk])

    with caplog.at_level(logging.ERROR, logger="compliance.reconciliation"):
        run = reconciliation_run()

    assert run.ok is False
    drift = [b for b in breaks_of(run) if b[0] == rec.BALANCES]
    assert drift == [(rec.BALANCES, client.pk, "BTC", D("1"), D("1.1"))]
    # The client's balance now exceeds what custody holds for it: the accounting equation breaks as well.
    assert {b[0] for b in breaks_of(run)} == {rec.BALANCES, rec.CUSTODY}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"{client.code} BTC: balance table says 1.1, postings sum to 1" in "\n".join(errors)


def test_a_stray_hold_is_caught(alice):
    busy_books(alice)
    stray = ledger.hold_place(key="forgotten", account=ledger_account_of(alice), asset="USD", amount=D("25"))

    run = reconciliation_run()

    assert breaks_of(run) == [(rec.COMMITMENTS, ledger_account_of(alice).pk, "USD", D(0), D("25"))]
    assert f"#{stray.pk} (forgotten)" in run.breaks.get().detail


def test_a_hold_left_active_by_a_closed_order_or_withdrawal_is_caught(alice):
    busy_books(alice)
    resting = Order.objects.get(status=OrderStatus.OPEN)
    Order.objects.filter(pk=resting.pk).update(status=OrderStatus.CANCELLED)  # closed without releasing its hold
    Withdrawal.objects.update(status=FundingStatus.REJECTED)

    run = reconciliation_run()

    assert sorted(b[4] for b in breaks_of(run)) == sorted([D("500"), resting.hold.remaining])
    assert {b[0] for b in breaks_of(run)} == {rec.COMMITMENTS}


def test_an_open_order_or_pending_withdrawal_without_its_hold_is_caught(alice):
    busy_books(alice)
    resting = Order.objects.get(status=OrderStatus.OPEN)
    withdrawal = Withdrawal.objects.get()
    ledger.holds_release(holds=[resting.hold])
    ledger.holds_release(holds=[withdrawal.hold])

    run = reconciliation_run()

    details = [b.detail for b in run.breaks.all()]
    assert len(details) == 2 and all(b[0] == rec.COMMITMENTS for b in breaks_of(run))
    assert f"Order #{resting.pk} is open but its hold" in details[0]
    assert f"Withdrawal #{withdrawal.pk} is requested but has no active hold" in details[1]


def test_held_amount_out_of_step_with_the_holds_is_caught(alice):
    fund(alice, "USD", "100")
    client = ledger_account_of(alice)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_balance SET held = 30 WHERE account_id = %s AND asset_id = 'USD'", [client.pk])

    run = reconciliation_run()

    assert breaks_of(run) == [(rec.HELD, client.pk, "USD", D(0), D("30"))]


def test_unbalanced_postings_smuggled_past_the_triggers_break_the_trial_balance(alice):
    fund(alice, "ETH", "1")
    client = ledger_account_of(alice)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # disables the guarantee triggers
        cursor.execute("INSERT INTO ledger_journalentry (key, kind, memo, content_hash, created_at) "
                       "VALUES ('smuggled', 'manual', '', '', now()) RETURNING id")
        entry_id = cursor.fetchone()[0]
        cursor.execute("INSERT INTO ledger_posting (entry_id, account_id, asset_id, amount, created_at) "
                       "VALUES (%s, %s, 'ETH', -5, now())", [entry_id, client.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")

    run = reconciliation_run()

    checks = {b[0]: b for b in breaks_of(run)}
    assert checks[rec.TRIAL_BALANCE] == (rec.TRIAL_BALANCE, None, "ETH", D(0), D(-5))
    assert checks[rec.BALANCES] == (rec.BALANCES, client.pk, "ETH", D(6), D(1))


def test_spending_client_money_shows_as_a_custody_shortfall(alice):
    """Balanced, valid entries can still leave client liabilities uncovered: the firm paid an expense out of
    the omnibus that only held client funds."""
    fund(alice, "BTC", "2")
    ledger.entry_post(key="expense:1", kind="expense", legs=[
        ledger.debit(ledger.firm_account(Purpose.EXPENSE), "BTC", D("0.5")),
        ledger.credit(ledger.firm_account(Purpose.CUSTODY), "BTC", D("0.5")),
    ])

    run = reconciliation_run()

    assert breaks_of(run) == [(rec.CUSTODY, None, "BTC", D("2"), D("1.5"))]
    assert "does not cover client liabilities" in run.breaks.get().detail


def test_a_snapshot_that_disagrees_with_the_postings_is_caught(alice):
    with mock.patch("django.utils.timezone.now", return_value=datetime(2024, 3, 1, 12, tzinfo=UTC)):
        fund(alice, "BTC", "1")
    balance_snapshot_take(day=date(2024, 3, 1))
    BalanceSnapshot.objects.filter(account=ledger_account_of(alice)).update(amount=D("0.9"))

    run = reconciliation_run()

    assert breaks_of(run) == [(rec.SNAPSHOT, ledger_account_of(alice).pk, "BTC", D("1"), D("0.9"))]


def test_the_work_does_not_grow_with_the_number_of_postings(alice):
    def queries_of_a_run():
        with CaptureQueriesContext(connection) as captured:
            reconciliation_run()
        return len(captured)

    fund(alice, "BTC", "1")
    few = queries_of_a_run()
    for i in range(30):
        fund(ClientAccountFactory(), "BTC" if i % 2 else "USD", "1")
    assert queries_of_a_run() == few


def test_command_fails_on_breaks_and_passes_on_clean_books(alice, capsys):
    fund(alice, "BTC", "1")
    call_command("reconcile")
    assert "the books reconcile" in capsys.readouterr().out

    ledger.hold_place(key="stray", account=ledger_account_of(alice), asset="BTC", amount=D("0.1"))
    with pytest.raises(CommandError, match="1 break"):
        call_command("reconcile")
    assert "BREAK holds_vs_commitments" in capsys.readouterr().out


def test_on_demand_run_from_the_admin_is_queued_and_attributed(alice, django_capture_on_commit_callbacks):
    staff_groups_ensure()
    operator = StaffFactory()
    operator.groups.add(Group.objects.get(name=OPERATIONS))
    compliance = StaffFactory()
    compliance.groups.add(Group.objects.get(name=COMPLIANCE))
    from django.test import Client

    web = Client()
    web.force_login(compliance)
    assert web.post(reverse("admin-reconciliation-run")).status_code == 403
    web.force_login(operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(reverse("admin-reconciliation-run"), {"next": "/admin/"})

    assert response.status_code == 302 and response["Location"] == "/admin/"
    run = ReconciliationRun.objects.get()
    assert run.triggered_by == operator and run.ok is True


def test_schedule_runs_the_task_after_commit(alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reconciliation_schedule(acting_user=None)
    assert not ReconciliationRun.objects.exists()
    callbacks[0]()
    assert ReconciliationRun.objects.get().ok is True
