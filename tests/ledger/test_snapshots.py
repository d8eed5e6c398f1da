"""End-of-day snapshots: exact, idempotent, incremental, and as-of balances that use them equal the plain sum."""

from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from core.exceptions import DomainError
from ledger import selectors
from ledger import services as ledger
from ledger.models import BalanceSnapshot, Posting, Purpose
from ledger.snapshots import balance_snapshot_take
from ledger.tasks import balance_snapshot_take as snapshot_task
from tests.factories import ClientAccountFactory, fund, ledger_account_of

pytestmark = pytest.mark.django_db
D = Decimal
DAY1, DAY2, DAY3 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)


@contextmanager
def at(when: datetime):
    with mock.patch("django.utils.timezone.now", return_value=when):
        yield


def withdraw(account, asset, amount):
    ledger.entry_post(key=f"w:{account.pk}:{asset}:{amount}", kind="withdrawal", legs=[
        ledger.debit(account, asset, D(amount)), ledger.credit(ledger.firm_account(Purpose.CUSTODY), asset, D(amount)),
    ])


@pytest.fixture
def alice():
    return ledger_account_of(ClientAccountFactory())


def snapshot_of(day, account, asset):
    return BalanceSnapshot.objects.get(day=day, account=account, asset_id=asset)


def test_snapshot_is_the_balance_at_the_end_of_the_day(alice):
    with at(datetime(2024, 3, 1, 10, tzinfo=UTC)):
        fund(alice, "BTC", "2")
    with at(datetime(2024, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)):
        withdraw(alice, "BTC", "0.5")
    with at(datetime(2024, 3, 2, 0, 0, tzinfo=UTC)):  # the first instant of the next day is not in DAY1
        fund(alice, "BTC", "7")

    assert balance_snapshot_take(day=DAY1) == 2  # alice and custody
    snap = snapshot_of(DAY1, alice, "BTC")
    assert snap.amount == D("1.5")
    last_of_the_day = Posting.objects.filter(account=alice, created_at__lt=datetime(2024, 3, 2, tzinfo=UTC)).last()
    assert snap.last_posting_id == last_of_the_day.pk
    assert snapshot_of(DAY1, ledger.firm_account(Purpose.CUSTODY), "BTC").amount == D("1.5")


def test_taking_a_day_twice_changes_nothing(alice):
    with at(datetime(2024, 3, 1, 10, tzinfo=UTC)):
        fund(alice, "USD", "100")
    assert balance_snapshot_take(day=DAY1) == 2
    before = list(BalanceSnapshot.objects.values_list("pk", "amount", "last_posting_id"))

    assert balance_snapshot_take(day=DAY1) == 0
    assert list(BalanceSnapshot.objects.values_list("pk", "amount", "last_posting_id")) == before


def test_a_day_that_has_not_ended_is_refused():
    with pytest.raises(DomainError) as exc:
        balance_snapshot_take(day=timezone.now().date())
    assert exc.value.code == "day_not_over"


def test_snapshots_build_on_the_previous_day_and_carry_quiet_accounts_forward(alice):
    bob = ledger_account_of(ClientAccountFactory())
    with at(datetime(2024, 3, 1, 10, tzinfo=UTC)):
        fund(alice, "BTC", "2")
        fund(bob, "ETH", "3")
    balance_snapshot_take(day=DAY1)
    with at(datetime(2024, 3, 2, 10, tzinfo=UTC)):
        withdraw(alice, "BTC", "0.25")

    balance_snapshot_take(day=DAY2)

    assert snapshot_of(DAY2, alice, "BTC").amount == D("1.75")
    assert snapshot_of(DAY2, bob, "ETH").amount == D("3")  # no posting on DAY2, carried forward
    assert snapshot_of(DAY2, bob, "ETH").last_posting_id == snapshot_of(DAY1, bob, "ETH").last_posting_id
    custody = ledger.firm_account(Purpose.CUSTODY)
    assert (snapshot_of(DAY2, custody, "BTC").amount, snapshot_of(DAY2, custody, "ETH").amount) == (D("1.75"), D("3"))


def test_balance_as_of_with_snapshots_equals_the_plain_sum_of_postings(alice):
    moments = [datetime(2024, 3, d, h, tzinfo=UTC) for d in (1, 2, 3) for h in (0, 9, 23)]
    for i, moment in enumerate(moments):
        with at(moment):
            fund(alice, "BTC", f"{i + 1}.5")
            if i % 3 == 2:
                withdraw(alice, "BTC", f"{i}")
    balance_snapshot_take(day=DAY1)
    balance_snapshot_take(day=DAY2)

    probes = moments + [m + timedelta(microseconds=1) for m in moments] + [
        datetime(2024, 3, 2, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC) - timedelta(microseconds=1),
        datetime(2024, 3, 10, tzinfo=UTC), datetime(2024, 2, 28, tzinfo=UTC),
    ]
    for probe in probes:
        plain = Posting.objects.filter(account=alice, asset_id="BTC", created_at__lte=probe).aggregate(
            t=Sum("amount"))["t"] or D(0)
        assert selectors.balance_as_of(account=alice, asset="BTC", at=probe) == -plain, probe


def test_balance_as_of_uses_the_snapshot(alice):
    """Proof that the snapshot is read: a (deliberately wrong) snapshot shows through as-of balances after it."""
    with at(datetime(2024, 3, 1, 10, tzinfo=UTC)):
        fund(alice, "BTC", "1")
    balance_snapshot_take(day=DAY1)
    BalanceSnapshot.objects.filter(account=alice).update(amount=D("100"))

    assert selectors.balance_as_of(account=alice, asset="BTC", at=datetime(2024, 3, 2, 5, tzinfo=UTC)) == D("100")
    assert selectors.balance_as_of(account=alice, asset="BTC", at=datetime(2024, 3, 1, 23, tzinfo=UTC)) == D("1")


def test_command_and_task_snapshot_a_day(alice):
    with at(datetime(2024, 3, 1, 10, tzinfo=UTC)):
        fund(alice, "BTC", "1")
    call_command("snapshot_balances", "--day", "2024-03-01")
    assert snapshot_of(DAY1, alice, "BTC").amount == D("1")

    with at(datetime(2024, 3, 3, 0, 5, tzinfo=UTC)):  # the beat job at 00:05 snapshots the day that just ended
        assert snapshot_task.delay().get() == 2
    assert snapshot_of(DAY2, alice, "BTC").amount == D("1")
