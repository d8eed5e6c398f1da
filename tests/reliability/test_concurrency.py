"""Many clients at once on the same accounts: orders placed and cancelled, withdrawals requested, cancelled
and sent, matchers running, all in parallel threads with their own database connections. Afterwards the books
must be exactly right: no negative balance, holds equal open commitments, every fill settled once, and
clients plus fee revenue hold exactly what was paid in less what was paid out."""

from __future__ import annotations

import random
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import transaction

from accounts.models import Withdrawal
from ledger import services as ledger
from ledger.models import Balance, Purpose
from tests.reliability.db import RowLock, backend_pid, in_thread, matcher_frozen, wait_until, waiting_on
from tests.reliability.desk import Desk, refused
from tests.reliability.invariants import assert_books_consistent
from tests.threads import run_in_threads
from trading import services as trading
from trading.models import Order, OrderStatus, OrderType, Side, TimeInForce

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 6
ACTIONS_PER_THREAD = 40
RESULT_SECONDS = 60


class Session:
    """One client's random session on the shared accounts: each action is a real service call."""

    def __init__(self, desk: Desk, seed: int):
        self.desk, self.rng = desk, random.Random(seed)
        self.orders: list[Order] = []
        self.withdrawals: list[Withdrawal] = []
        self.errors: list[str] = []

    def run(self, start: threading.Barrier) -> list[str]:
        start.wait(timeout=RESULT_SECONDS)
        for _ in range(ACTIONS_PER_THREAD):
            try:
                self.act()
            except Exception:  # noqa: BLE001 - collected with its traceback and reported
                self.errors.append(traceback.format_exc())
        return self.errors

    def act(self) -> None:
        desk, rng = self.desk, self.rng
        account, market = rng.choice(desk.accounts), rng.choice(desk.markets)
        roll = rng.random()
        if roll < 0.45:
            self._keep(refused(desk.limit_order, rng, account, market))
        elif roll < 0.55:
            self._keep(refused(desk.market_order, rng, account, market))
        elif roll < 0.70 and self.orders:
            refused(desk.cancel, rng.choice(self.orders))
        elif roll < 0.75:
            refused(trading.orders_cancel_all, account=account, market=market, acting_user=None)
        elif roll < 0.85:
            self._keep(refused(desk.withdraw, rng, account))
        elif roll < 0.92 and self.withdrawals:
            refused(desk.withdrawal_cancel, self.withdrawals.pop(rng.randrange(len(self.withdrawals))))
        elif self.withdrawals:
            refused(desk.withdrawal_complete, self.withdrawals.pop(rng.randrange(len(self.withdrawals))))
        else:
            trading.market_match(market_id=market.pk)

    def _keep(self, result) -> None:
        if isinstance(result, Order):
            self.orders.append(result)
        elif isinstance(result, Withdrawal):
            self.withdrawals.append(result)


def _summary(error: str) -> str:
    """The client action that failed and the error it got, on one line."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    action = next((line for line in reversed(lines) if "tests/reliability/desk.py" in line), "?")
    context = next((line for line in lines if line.startswith("CONTEXT:")), "")
    return f"{action}: {lines[-1]} {context}"


def test_parallel_clients_leave_the_books_exact():
    desk = Desk.open(accounts=4)
    start = threading.Barrier(THREADS)

    sessions = [Session(desk, seed) for seed in range(THREADS)]
    errors = [e for errs in run_in_threads(lambda s: s.run(start), sessions, threads=THREADS) for e in errs]
    desk.match_all()

    assert_books_consistent(deposited=desk.deposited, matched=True)
    assert not errors, "\n".join(map(_summary, errors)) + f"\n{errors[0]}"
    assert Order.objects.count() > THREADS * ACTIONS_PER_THREAD // 3
    assert Order.objects.filter(status=OrderStatus.FILLED).exists()  # the desk really traded
    assert Withdrawal.objects.filter(status="completed").exists()


# --- a withdrawal request meets a transaction that is committing on the same account -------------------------


def _order(desk: Desk, account, side: str) -> Order:
    return desk.place(account, desk.markets[0], side=side, type=OrderType.LIMIT, price=Decimal("100.00"),
                      size=Decimal("0.01"))


def _writer(desk: Desk, writes: str):
    """A service call that locks the first client's USD balance and writes rows referencing its account."""
    alice, bob = desk.accounts
    if writes == "order placement":
        return lambda: _order(desk, alice, Side.BUY)
    if writes == "order cancel":
        order = _order(desk, alice, Side.BUY)
        return lambda: desk.cancel(order)
    _order(desk, alice, Side.BUY), _order(desk, bob, Side.SELL)
    return lambda: trading.market_match(market_id=desk.markets[0].pk)


@pytest.mark.usefixtures("wakeups_lost")
@pytest.mark.parametrize("writes", ["order placement", "order cancel", "matcher batch"])
def test_a_withdrawal_request_does_not_deadlock_with_a_commit_on_the_same_account(writes):
    """The writer holds the client's USD balance row; the withdrawal request locks the client account row and
    waits for that balance; then the writer commits, and PostgreSQL's deferred foreign-key checks of its new
    rows take KEY SHARE on the same account row. That deadlocked while the account was locked FOR UPDATE."""
    desk = Desk.open(accounts=2)
    write = _writer(desk, writes)
    ready, commit, writer_pid = threading.Event(), threading.Event(), []

    def write_then_commit_when_told():
        with transaction.atomic():
            write()
            writer_pid.append(backend_pid())
            ready.set()
            commit.wait(timeout=RESULT_SECONDS)

    with ThreadPoolExecutor(max_workers=2) as pool:
        writer = in_thread(pool, write_then_commit_when_told)
        assert ready.wait(timeout=RESULT_SECONDS)
        withdrawal = in_thread(pool, desk.withdraw, random.Random(0), desk.accounts[0], "USD")
        wait_until(lambda: waiting_on(writer_pid[0]), what="the withdrawal request waits for the balance row")
        commit.set()
        failures = [f.exception(timeout=RESULT_SECONDS) for f in (writer, withdrawal)]

    assert failures == [None, None], failures
    assert_books_consistent(deposited=desk.deposited)


# --- two markets matched at once by two workers -----------------------------------------------------------


@pytest.mark.usefixtures("wakeups_lost")
def test_two_markets_matched_at_once_do_not_deadlock():
    """BTC-USD: alice buys from bob, and carol's IOC bid finds no ask (its hold is released). ETH-USD: carol buys
    from dave. Both batches need carol's USD balance and the fee account's USD balance. That deadlocked while a
    batch locked its fills' balances and its released holds' balances in two statements."""
    desk = Desk.open(accounts=4, funding={"USD": Decimal("1000")})
    alice, bob, carol, dave = desk.accounts
    btc, eth = desk.markets
    fees_usd = ledger.credit_limit_set(account=ledger.firm_account(Purpose.FEES), asset="USD", limit=Decimal(0))
    desk.deposit(bob, "BTC", Decimal("1"))  # bob's BTC balance row comes after the fee account's USD row
    desk.deposit(dave, "ETH", Decimal("10"))
    one_btc_lot, one_eth = {"size": Decimal("0.01")}, {"size": Decimal("1.000"), "price": Decimal("10.00")}
    desk.place(alice, btc, side=Side.BUY, type=OrderType.LIMIT, price=Decimal("100.00"), **one_btc_lot)
    desk.place(bob, btc, side=Side.SELL, type=OrderType.LIMIT, price=Decimal("100.00"), **one_btc_lot)
    desk.place(carol, btc, side=Side.BUY, type=OrderType.LIMIT, price=Decimal("90.00"),
               time_in_force=TimeInForce.IOC, **one_btc_lot)
    desk.place(carol, eth, side=Side.BUY, type=OrderType.LIMIT, **one_eth)
    desk.place(dave, eth, side=Side.SELL, type=OrderType.LIMIT, **one_eth)
    bob_btc = Balance.objects.get(account__client=bob, asset_id="BTC")
    assert bob_btc.pk > fees_usd.pk > Balance.objects.get(account__client=carol, asset_id="USD").pk

    with ThreadPoolExecutor(max_workers=2) as pool, RowLock(bob_btc) as lock:
        first = in_thread(pool, trading.market_match, market_id=btc.pk, wait=True)
        first_pid = matcher_frozen(btc.pk, lock)  # it holds the fee account's USD row, waits for bob's BTC
        second = in_thread(pool, trading.market_match, market_id=eth.pk, wait=True)
        wait_until(lambda: waiting_on(first_pid), what="the ETH-USD batch waits for the fee account's USD row")
        lock.release()
        failures = [f.exception(timeout=RESULT_SECONDS) for f in (first, second)]

    assert failures == [None, None], failures
    assert_books_consistent(deposited=desk.deposited, matched=True)
