"""A hypothesis state machine drives the order and funding services as clients and operations would (deposits,
limit and market orders of every kind, stop-limit and good-til-time orders, amends, time passing, cancels, matcher
runs, withdrawals requested, cancelled, rejected and sent) on three accounts and two markets, and checks after
every step that the books are exactly right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from accounts import services as accounts
from accounts.models import Withdrawal
from tests.reliability.desk import DESTINATIONS, FUNDING, PRICE_BANDS, Desk, refused
from tests.reliability.invariants import assert_books_consistent
from trading import clock as trading_clock
from trading import services as trading
from trading.books import books_clear
from trading.models import Order, OrderType, SelfTradePrevention, Side, TimeInForce

ACCOUNTS = 3
accounts_ = st.integers(0, ACCOUNTS - 1)
markets_ = st.integers(0, 1)
assets_ = st.sampled_from(sorted(FUNDING))
picks = st.integers(min_value=0)


class Brokerage(RuleBasedStateMachine):
    """Each run starts from the same funded accounts, inside a savepoint that ``teardown`` rolls back."""

    def __init__(self, desk: Desk):
        super().__init__()
        books_clear()
        self.savepoint = transaction.atomic()
        self.savepoint.__enter__()
        self.desk = desk.copy()
        self.orders: list[Order] = list(Order.objects.all())
        self.withdrawals: list[Withdrawal] = []
        self.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # trading's clock: good-til-time expiry
        self._clock = trading_clock.now
        trading_clock.now = lambda: self.now

    def teardown(self):
        trading_clock.now = self._clock
        transaction.set_rollback(True)
        self.savepoint.__exit__(None, None, None)
        books_clear()

    def _account(self, i: int):
        return self.desk.accounts[i]

    def _keep(self, result, into: list) -> None:
        if not isinstance(result, Exception):
            into.append(result)

    @rule(account=accounts_, asset=assets_, units=st.integers(1, 5000))
    def deposit(self, account, asset, units):
        self.desk.deposit(self._account(account), asset, FUNDING[asset] * units / 1000)

    @rule(account=accounts_, market=markets_, side=st.sampled_from(Side.values), steps=st.integers(0, 20),
          lots=st.integers(1, 20), tif=st.sampled_from(TimeInForce.values), post_only=st.booleans(),
          stp=st.sampled_from(SelfTradePrevention.values))
    def place_limit(self, account, market, side, steps, lots, tif, post_only, stp):
        market = self.desk.markets[market]
        low, tick, _ = PRICE_BANDS[market.symbol]
        self._keep(refused(self.desk.place, self._account(account), market, side=side, type=OrderType.LIMIT,
                           price=low + tick * steps, size=market.lot_size * 1000 * lots, time_in_force=tif,
                           post_only=post_only and tif == TimeInForce.GTC, stp=stp), self.orders)

    @rule(account=accounts_, market=markets_, side=st.sampled_from(Side.values), steps=st.integers(0, 20),
          stop_steps=st.integers(0, 20), lots=st.integers(1, 20), gtt_seconds=st.one_of(st.none(), st.integers(10, 60)),
          stp=st.sampled_from(SelfTradePrevention.values))
    def place_stop_limit(self, account, market, side, steps, stop_steps, lots, gtt_seconds, stp):
        market = self.desk.markets[market]
        low, tick, _ = PRICE_BANDS[market.symbol]
        expiry = {} if gtt_seconds is None else {"time_in_force": TimeInForce.GTT,
                                                 "expire_time": self.now + timedelta(seconds=gtt_seconds)}
        self._keep(refused(self.desk.place, self._account(account), market, side=side, type=OrderType.STOP_LIMIT,
                           price=low + tick * steps, stop_price=low + tick * stop_steps,
                           size=market.lot_size * 1000 * lots, stp=stp, **expiry), self.orders)

    @rule(account=accounts_, market=markets_, side=st.sampled_from(Side.values), steps=st.integers(0, 20),
          lots=st.integers(1, 20), seconds=st.integers(10, 60))
    def place_gtt(self, account, market, side, steps, lots, seconds):
        market = self.desk.markets[market]
        low, tick, _ = PRICE_BANDS[market.symbol]
        self._keep(refused(self.desk.place, self._account(account), market, side=side, type=OrderType.LIMIT,
                           price=low + tick * steps, size=market.lot_size * 1000 * lots,
                           time_in_force=TimeInForce.GTT, expire_time=self.now + timedelta(seconds=seconds)),
                   self.orders)

    @rule(seconds=st.integers(1, 40))
    def time_passes(self, seconds):
        self.now += timedelta(seconds=seconds)

    @precondition(lambda self: self.orders)
    @rule(pick=picks, lots=st.integers(1, 30), steps=st.one_of(st.none(), st.integers(0, 20)))
    def amend(self, pick, lots, steps):
        """Reduce in place, or cancel-replace (a larger size or a new price)."""
        order = self.orders[pick % len(self.orders)]
        low, tick, _ = PRICE_BANDS[order.market.symbol]
        price = None if steps is None or order.price is None else low + tick * steps
        self._keep(refused(trading.order_amend, order=order, size=order.market.lot_size * 1000 * lots, price=price,
                           acting_user=None), self.orders)

    @rule(account=accounts_, market=markets_, side=st.sampled_from(Side.values), lots=st.integers(1, 30),
          funds=st.one_of(st.none(), st.integers(1, 2000)), tif=st.sampled_from([TimeInForce.IOC, TimeInForce.FOK]))
    def place_market(self, account, market, side, lots, funds, tif):
        market = self.desk.markets[market]
        amount = {"funds": Decimal(funds)} if funds and side == Side.BUY else {
            "size": market.lot_size * 1000 * lots, **({"time_in_force": tif} if tif else {})}
        self._keep(refused(self.desk.place, self._account(account), market, side=side, type=OrderType.MARKET,
                           **amount), self.orders)

    @rule(maker=accounts_, other=st.integers(1, ACCOUNTS - 1), market=markets_, side=st.sampled_from(Side.values),
          steps=st.integers(0, 20), maker_lots=st.integers(1, 20), taker_lots=st.integers(1, 30),
          through=st.integers(0, 3), taker_type=st.sampled_from(OrderType.values), tif=st.sampled_from(TimeInForce.values))
    def trade(self, maker, other, market, side, steps, maker_lots, taker_lots, through, taker_type, tif):
        """A resting limit order, then another account's order that crosses it, then the matcher: fills happen."""
        self.place_limit(maker, market, side, steps, maker_lots, TimeInForce.GTC, False,
                         SelfTradePrevention.CANCEL_NEWEST)
        taker, opposite = (maker + other) % ACCOUNTS, Side.SELL if side == Side.BUY else Side.BUY
        if taker_type == OrderType.MARKET:
            self.place_market(taker, market, opposite, taker_lots, None, tif if tif != TimeInForce.GTC else None)
        else:
            crossing = steps - through if opposite == Side.SELL else steps + through
            self.place_limit(taker, market, opposite, crossing, taker_lots, tif, False,
                             SelfTradePrevention.CANCEL_NEWEST)
        self.match(market)

    @precondition(lambda self: self.orders)
    @rule(pick=picks)
    def cancel(self, pick):
        refused(self.desk.cancel, self.orders[pick % len(self.orders)])

    @rule(account=accounts_, market=st.one_of(st.none(), markets_))
    def cancel_all(self, account, market):
        refused(trading.orders_cancel_all, account=self._account(account), acting_user=None,
                market=None if market is None else self.desk.markets[market])

    @rule(market=markets_)
    def match(self, market):
        trading.market_match(market_id=self.desk.markets[market].pk)

    @rule(account=accounts_, asset=assets_, percent=st.integers(1, 60))
    def withdraw(self, account, asset, percent):
        amount = (FUNDING[asset] * percent / 100).quantize(Decimal("0.01"))
        self._keep(refused(accounts.withdrawal_request, account=self._account(account), asset=asset,
                           amount=amount, acting_user=None, idempotency_key=f"sm-{len(self.withdrawals)}-{percent}",
                           **DESTINATIONS[asset]), self.withdrawals)

    @precondition(lambda self: self.withdrawals)
    @rule(pick=picks, outcome=st.sampled_from(["cancel", "reject", "complete"]))
    def withdrawal_decide(self, pick, outcome):
        withdrawal = self.withdrawals[pick % len(self.withdrawals)]
        if outcome == "cancel":
            refused(self.desk.withdrawal_cancel, withdrawal)
        elif outcome == "reject":
            refused(accounts.withdrawal_reject, withdrawal=withdrawal, acting_user=self.desk.approvers[1],
                    reason="test")
        else:
            refused(self.desk.withdrawal_complete, withdrawal)

    @invariant()
    def books_are_exact(self):
        assert_books_consistent(deposited=self.desk.deposited)


def _book_seed(desk: Desk) -> None:
    """Every run starts with resting bids and asks from two accounts on both markets, a few ticks apart."""
    for market in desk.markets:
        low, tick, _ = PRICE_BANDS[market.symbol]
        for level in range(3):
            for account, side, steps in ((0, Side.BUY, 9 - level), (1, Side.SELL, 11 + level)):
                desk.place(desk.accounts[account], market, side=side, type=OrderType.LIMIT, price=low + tick * steps,
                           size=market.lot_size * 1000 * (level + 1))
    desk.match_all()


@pytest.mark.django_db
def test_any_sequence_of_client_and_operations_actions_keeps_the_books_exact():
    desk = Desk.open(accounts=ACCOUNTS)
    _book_seed(desk)
    run_state_machine_as_test(lambda: Brokerage(desk), settings=settings(
        max_examples=15, stateful_step_count=25, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    ))
