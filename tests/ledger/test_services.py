"""Ledger service behaviour: posting, idempotency, reversal, balances as of a time, holds."""

from decimal import Decimal

import pytest
from django.utils import timezone

from ledger import selectors
from ledger import services as ledger
from ledger.errors import IdempotencyConflict, InsufficientFunds, InvalidAmount, UnbalancedEntry
from ledger.models import Balance, Hold, HoldStatus, JournalEntry, Posting, Purpose
from tests.factories import ClientAccountFactory, assert_balance, fund, ledger_account_of

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def client_account():
    return ledger_account_of(ClientAccountFactory())


def deposit_legs(account, asset="BTC", amount=D("1.5")):
    return [
        ledger.debit(ledger.firm_account(Purpose.CUSTODY), asset, amount),
        ledger.credit(account, asset, amount),
    ]


def test_deposit_credits_client_and_custody(client_account):
    entry = ledger.entry_post(key="deposit:1", kind="deposit", legs=deposit_legs(client_account))

    assert entry.postings.count() == 2
    assert_balance(client_account, "BTC", "1.5", held="0")
    assert_balance(ledger.firm_account(Purpose.CUSTODY), "BTC", "1.5")
    assert selectors.trial_balance() == {"BTC": D(0)}


def test_unbalanced_entry_is_refused_in_python(client_account):
    legs = [ledger.debit(ledger.firm_account(Purpose.CUSTODY), "BTC", D("1")), ledger.credit(client_account, "BTC", D("0.9"))]
    with pytest.raises(UnbalancedEntry):
        ledger.entry_post(key="bad", kind="deposit", legs=legs)
    assert not JournalEntry.objects.filter(key="bad").exists()


def test_entries_balance_per_asset_not_in_total(client_account):
    custody = ledger.firm_account(Purpose.CUSTODY)
    legs = [ledger.debit(custody, "BTC", D("1")), ledger.credit(client_account, "ETH", D("1"))]
    with pytest.raises(UnbalancedEntry):
        ledger.entry_post(key="cross-asset", kind="deposit", legs=legs)


def test_over_precise_amount_is_refused(client_account):
    with pytest.raises(InvalidAmount) as exc:
        ledger.entry_post(key="precise", kind="deposit", legs=deposit_legs(client_account, "USD", D("1.001")))
    assert exc.value.code == "too_precise"


def test_replaying_a_key_returns_the_original_and_writes_nothing(client_account):
    first = ledger.entry_post(key="deposit:7", kind="deposit", legs=deposit_legs(client_account))
    again = ledger.entry_post(key="deposit:7", kind="deposit", legs=deposit_legs(client_account))

    assert again.pk == first.pk
    assert JournalEntry.objects.count() == 1
    assert Posting.objects.count() == 2
    assert_balance(client_account, "BTC", "1.5")


def test_same_key_with_other_content_is_a_conflict(client_account):
    ledger.entry_post(key="deposit:8", kind="deposit", legs=deposit_legs(client_account))
    with pytest.raises(IdempotencyConflict):
        ledger.entry_post(key="deposit:8", kind="deposit", legs=deposit_legs(client_account, amount=D("2")))
    assert_balance(client_account, "BTC", "1.5")


def test_client_balance_cannot_go_negative(client_account):
    fund(client_account, "USD", "100")
    legs = [ledger.debit(client_account, "USD", D("100.01")), ledger.credit(ledger.firm_account(Purpose.CUSTODY), "USD", D("100.01"))]
    with pytest.raises(InsufficientFunds):
        ledger.entry_post(key="withdraw-too-much", kind="withdrawal", legs=legs)
    assert_balance(client_account, "USD", "100")


def test_credit_limit_allows_an_explicit_overdraft(client_account):
    ledger.credit_limit_set(account=client_account, asset="USD", limit=D("50"))
    legs = [ledger.debit(client_account, "USD", D("50")), ledger.credit(ledger.firm_account(Purpose.CUSTODY), "USD", D("50"))]
    ledger.entry_post(key="overdraft", kind="withdrawal", legs=legs)
    assert_balance(client_account, "USD", "-50")


def test_reversal_restores_balances_and_references_the_original(client_account):
    entry = ledger.entry_post(key="deposit:9", kind="deposit", legs=deposit_legs(client_account))
    reversal = ledger.entry_reverse(entry=entry, memo="sent to the wrong account")

    assert reversal.reverses_id == entry.pk
    assert_balance(client_account, "BTC", "0")
    assert ledger.entry_reverse(entry=entry).pk == reversal.pk  # reversing twice replays


def test_balance_as_of_a_point_in_time(client_account):
    fund(client_account, "BTC", "1")
    between = timezone.now()
    fund(client_account, "BTC", "2")

    assert selectors.balance_as_of(account=client_account, asset="BTC", at=between) == D("1")
    assert selectors.balance_as_of(account=client_account, asset="BTC", at=timezone.now()) == D("3")


def test_hold_reduces_available_then_release_restores_it(client_account):
    fund(client_account, "USD", "100")
    hold = ledger.hold_place(key="order:1", account=client_account, asset="USD", amount=D("60"))

    view = selectors.balance_get(account=client_account, asset="USD")
    assert (view.total, view.held, view.available) == (D("100"), D("60"), D("40"))
    with pytest.raises(InsufficientFunds):
        ledger.hold_place(key="order:2", account=client_account, asset="USD", amount=D("40.01"))

    other = ledger.hold_place(key="order:3", account=client_account, asset="USD", amount=D("10"))
    assert_balance(client_account, "USD", "100", held="70")
    [released] = ledger.holds_release(holds=[hold])
    assert released.status == HoldStatus.RELEASED
    assert_balance(client_account, "USD", "100", held="10")
    # A replay releases nothing more; the other hold is untouched.
    assert ledger.holds_release(holds=[Hold.objects.get(pk=hold.pk)]) == []
    assert_balance(client_account, "USD", "100", held="10")
    assert Hold.objects.get(pk=other.pk).remaining == D("10")


def test_capture_spends_held_funds(client_account):
    fund(client_account, "USD", "100")
    hold = ledger.hold_place(key="withdrawal:1", account=client_account, asset="USD", amount=D("30"))
    legs = [ledger.debit(client_account, "USD", D("30")), ledger.credit(ledger.firm_account(Purpose.CUSTODY), "USD", D("30"))]

    ledger.entry_post(key="withdrawal:1", kind="withdrawal", legs=legs, captures=[ledger.Capture(hold, D("30"))])

    hold.refresh_from_db()
    assert hold.status == HoldStatus.CAPTURED and hold.remaining == 0
    assert_balance(client_account, "USD", "70", held="0")


def test_held_funds_cannot_be_spent_without_capturing_the_hold(client_account):
    fund(client_account, "USD", "100")
    ledger.hold_place(key="order:3", account=client_account, asset="USD", amount=D("80"))
    legs = [ledger.debit(client_account, "USD", D("30")), ledger.credit(ledger.firm_account(Purpose.CUSTODY), "USD", D("30"))]
    with pytest.raises(InsufficientFunds):
        ledger.entry_post(key="sneaky", kind="withdrawal", legs=legs)


def test_hold_key_replay_returns_the_same_hold(client_account):
    fund(client_account, "USD", "100")
    first = ledger.hold_place(key="order:4", account=client_account, asset="USD", amount=D("10"))
    again = ledger.hold_place(key="order:4", account=client_account, asset="USD", amount=D("10"))
    assert first.pk == again.pk
    assert_balance(client_account, "USD", "100", held="10")
    with pytest.raises(IdempotencyConflict):
        ledger.hold_place(key="order:4", account=client_account, asset="USD", amount=D("11"))


def test_drift_check_finds_a_tampered_balance(client_account):
    fund(client_account, "BTC", "1")
    assert selectors.balance_drift() == []
    Balance.objects.filter(account=client_account, asset_id="BTC").update(amount=D("1.1"))

    drifts = selectors.balance_drift()
    assert [(d.account_id, d.asset, d.field, d.stored, d.recomputed) for d in drifts] == [
        (client_account.pk, "BTC", "amount", D("1.1"), D("1"))
    ]
