"""Concurrent posting to the same accounts from many threads ends with the exact expected balances."""

from decimal import Decimal

import pytest
from django.db import close_old_connections

from ledger import selectors
from ledger import services as ledger
from ledger.errors import InsufficientFunds
from ledger.models import JournalEntry, Purpose
from tests.factories import ClientAccountFactory, assert_balance, fund, ledger_account_of
from tests.threads import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)



def test_concurrent_transfers_between_two_clients_keep_exact_balances():
    alice, bob = (ledger_account_of(ClientAccountFactory()) for _ in range(2))
    fund(alice, "USD", "1000")
    fund(bob, "USD", "1000")

    def transfer(i):
        close_old_connections()
        source, target = (alice, bob) if i % 2 else (bob, alice)
        amount = Decimal("1.01") if i % 2 else Decimal("0.99")
        ledger.entry_post(
            key=f"transfer:{i}", kind="transfer",
            legs=[ledger.debit(source, "USD", amount), ledger.credit(target, "USD", amount)],
        )

    run_in_threads(transfer, range(200))

    # 100 transfers of 1.01 alice->bob and 100 of 0.99 bob->alice
    assert_balance(alice, "USD", "998.00")
    assert_balance(bob, "USD", "1002.00")
    assert selectors.balance_drift() == []
    assert selectors.trial_balance()["USD"] == 0


def test_concurrent_withdrawals_never_overdraw():
    client = ledger_account_of(ClientAccountFactory())
    fund(client, "BTC", "1")
    custody = ledger.firm_account(Purpose.CUSTODY)

    def withdraw(i):
        try:
            ledger.entry_post(
                key=f"withdraw:{i}", kind="withdrawal",
                legs=[ledger.debit(client, "BTC", Decimal("0.3")), ledger.credit(custody, "BTC", Decimal("0.3"))],
            )
            return True
        except InsufficientFunds:
            return False

    results = run_in_threads(withdraw, range(20))

    assert results.count(True) == 3
    assert_balance(client, "BTC", "0.1")
    assert selectors.balance_drift() == []


def test_concurrent_replays_of_one_key_post_once():
    client = ledger_account_of(ClientAccountFactory())
    custody = ledger.firm_account(Purpose.CUSTODY)

    def deposit(_):
        return ledger.entry_post(
            key="deposit:same", kind="deposit",
            legs=[ledger.debit(custody, "ETH", Decimal("2")), ledger.credit(client, "ETH", Decimal("2"))],
        ).pk

    ids = run_in_threads(deposit, range(16))

    assert len(set(ids)) == 1
    assert JournalEntry.objects.filter(key="deposit:same").count() == 1
    assert_balance(client, "ETH", "2")
