"""hold_placing: the hold without replay lookup or savepoint that order placement uses. On
PostgreSQL the hold is inserted, then one statement locks, checks and reserves; a refusal or a missing balance row
takes the lock-and-check path."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from ledger import services as ledger
from ledger.errors import InsufficientFunds, InvalidAmount
from ledger.models import Balance, Hold, HoldStatus, Purpose
from tests.factories import ClientAccountFactory, assert_balance, fund, ledger_account_of

pytestmark = pytest.mark.django_db
D = Decimal


def hold_new(**kwargs):
    """A hold placed with nothing else written in the block."""
    with ledger.hold_placing(**kwargs) as hold:
        pass
    return hold


@pytest.fixture
def client_account():
    return ledger_account_of(ClientAccountFactory())


def test_reserves_available_funds_in_two_statements(client_account, django_assert_num_queries):
    fund(client_account, "USD", "100")
    with django_assert_num_queries(2):
        hold = hold_new(key="order:1", account=client_account, asset="USD", amount=D("60"),
                                     reason="order buy BTC-USD")
    assert_balance(client_account, "USD", "100", held="60")
    stored = Hold.objects.get(key="order:1")
    assert (hold.pk, hold.account_id, hold.asset_id, hold.amount, hold.remaining, hold.status, hold.reason) == (
        stored.pk, stored.account_id, stored.asset_id, stored.amount, stored.remaining, stored.status, stored.reason)
    assert stored.status == HoldStatus.ACTIVE and not hold._state.adding
    assert hold.created_at == stored.created_at


def test_refuses_more_than_available_and_changes_nothing(client_account):
    fund(client_account, "USD", "100")
    hold_new(key="order:1", account=client_account, asset="USD", amount=D("60"))
    with pytest.raises(InsufficientFunds) as refused:
        hold_new(key="order:2", account=client_account, asset="USD", amount=D("40.01"))
    assert refused.value.field == "amount"
    assert refused.value.message == "Insufficient available USD: 40.00 available, 40.01 needed."
    assert_balance(client_account, "USD", "100", held="60")
    assert not Hold.objects.filter(key="order:2").exists()
    hold_new(key="order:3", account=client_account, asset="USD", amount=D("40"))  # exactly all
    assert_balance(client_account, "USD", "100", held="100")


def test_a_credit_limit_counts_as_available(client_account):
    fund(client_account, "USD", "100")
    ledger.credit_limit_set(account=client_account, asset="USD", limit=D("50"))
    hold_new(key="order:1", account=client_account, asset="USD", amount=D("150"))
    with pytest.raises(InsufficientFunds):
        hold_new(key="order:2", account=client_account, asset="USD", amount=D("0.01"))
    assert_balance(client_account, "USD", "100", held="150")


def test_a_missing_balance_row_is_created_and_refused_for_a_client(client_account):
    with pytest.raises(InsufficientFunds):
        hold_new(key="order:1", account=client_account, asset="ETH", amount=D("1"))
    assert Balance.objects.filter(account=client_account, asset_id="ETH").exists()
    assert not Hold.objects.exists()


def test_accounts_without_a_floor_may_hold_beyond_their_balance():
    firm = ledger.firm_account(Purpose.SETTLEMENT)
    hold_new(key="firm:1", account=firm, asset="USD", amount=D("10"))  # no balance row yet
    hold_new(key="firm:2", account=firm, asset="USD", amount=D("5"))  # the statement path
    assert_balance(firm, "USD", "0", held="15")


def test_amounts_are_checked_and_a_used_key_is_an_integrity_error(client_account):
    fund(client_account, "USD", "100")
    with pytest.raises(InvalidAmount):
        hold_new(key="order:1", account=client_account, asset="USD", amount=D("0"))
    with pytest.raises(InvalidAmount):
        hold_new(key="order:1", account=client_account, asset="USD", amount=D("0.001"))
    hold_new(key="order:1", account=client_account, asset="USD", amount=D("1"))
    with pytest.raises(IntegrityError), transaction.atomic():
        hold_new(key="order:1", account=client_account, asset="USD", amount=D("1"))
    assert_balance(client_account, "USD", "100", held="1")


def test_hold_place_still_replays_through_the_new_path(client_account):
    fund(client_account, "USD", "100")
    first = ledger.hold_place(key="order:1", account=client_account, asset="USD", amount=D("10"))
    assert ledger.hold_place(key="order:1", account=client_account, asset="USD", amount=D("10")).pk == first.pk
    assert_balance(client_account, "USD", "100", held="10")


@pytest.mark.django_db(transaction=True)
def test_it_must_run_inside_the_callers_transaction():
    account = ledger_account_of(ClientAccountFactory())
    with pytest.raises(RuntimeError):
        hold_new(key="order:1", account=account, asset="USD", amount=D("1"))


def test_hold_placing_reserves_when_the_block_ends(client_account):
    fund(client_account, "USD", "100")
    with ledger.hold_placing(key="order:1", account=client_account, asset="USD", amount=D("60")) as hold:
        assert Hold.objects.filter(pk=hold.pk).exists()
        assert_balance(client_account, "USD", "100", held="0")  # the balance row is not locked yet
    assert_balance(client_account, "USD", "100", held="60")


def test_hold_placing_refused_at_the_end_removes_the_hold(client_account):
    fund(client_account, "USD", "100")
    with (pytest.raises(InsufficientFunds),
          ledger.hold_placing(key="order:1", account=client_account, asset="USD", amount=D("100.01"))):
        pass
    assert not Hold.objects.exists()
    assert_balance(client_account, "USD", "100", held="0")


def test_hold_placing_reserves_nothing_when_the_block_fails(client_account):
    fund(client_account, "USD", "100")
    with (pytest.raises(RuntimeError), transaction.atomic(),
          ledger.hold_placing(key="order:1", account=client_account, asset="USD", amount=D("10"))):
        raise RuntimeError("the caller's write failed")
    assert not Hold.objects.exists()
    assert_balance(client_account, "USD", "100", held="0")
