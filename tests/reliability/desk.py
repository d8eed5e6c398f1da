"""A small trading desk for the reliability tests: two markets, funded client accounts, operations staff, and
the client-side actions the tests replay at random (each one a real service call, as the API would make it)."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from accounts import services as accounts
from accounts.models import FundingStatus, Withdrawal
from core.exceptions import DomainError
from tests.factories import ClientAccountFactory, MarketFactory, StaffFactory, allow_destination, deposit_reference
from trading import services as trading
from trading.models import Market, Order, OrderType, SelfTradePrevention, Side, TimeInForce

_ids = itertools.count(1)

# Per market: (lowest price, price step, most lots per order); a lot here is 1000 of the market's lot sizes.
PRICE_BANDS = {"BTC-USD": (Decimal("95.00"), Decimal("0.50"), 20), "ETH-USD": (Decimal("9.00"), Decimal("0.25"), 12)}
FUNDING = {"USD": Decimal("20000"), "BTC": Decimal("5"), "ETH": Decimal("50")}
DESTINATIONS = {"USD": {"bank_reference": "DE89 3704 0044 0532 0130 00"},
                "BTC": {"blockchain_address": "bc1qtest"}, "ETH": {"blockchain_address": "0xtest"}}


def markets_create() -> list[Market]:
    btc = MarketFactory()
    eth = MarketFactory(symbol="ETH-USD", base_id="ETH", lot_size=Decimal("0.001"), min_size=Decimal("0.001"),
                        maker_fee_rate=Decimal("0.0015"), taker_fee_rate=Decimal("0.0025"))
    return [btc, eth]


@dataclass
class Desk:
    markets: list[Market]
    accounts: list
    approvers: list
    deposited: Counter = field(default_factory=Counter)

    @classmethod
    def open(cls, *, accounts: int = 3, funding: dict[str, Decimal] = FUNDING) -> Desk:
        approvers = [StaffFactory(password=None) for _ in range(2)]  # no password: hashing one takes 0.3 s
        desk = cls(markets_create(), [ClientAccountFactory() for _ in range(accounts)], approvers)
        for account in desk.accounts:
            for asset, amount in funding.items():
                desk.deposit(account, asset, amount)
            for asset, destination in DESTINATIONS.items():
                allow_destination(account, asset, next(iter(destination.values())))
        return desk

    def copy(self) -> Desk:
        return Desk(self.markets, self.accounts, self.approvers, Counter(self.deposited))

    def deposit(self, account, asset: str, amount: Decimal) -> None:
        """Fund an account through the funding workflow: requested, approved, completed (entry ``deposit:<id>``)."""
        deposit = accounts.deposit_request(account=account, asset=asset, amount=amount, acting_user=None,
                                           **deposit_reference(asset))
        deposit = accounts.deposit_approve(deposit=deposit, acting_user=self.approvers[0])
        accounts.deposit_complete(deposit=deposit, acting_user=self.approvers[1])
        self.deposited[asset] += amount

    # --- what clients and operations do ----------------------------------------------------------------

    def limit_order(self, rng: random.Random, account, market: Market, **overrides) -> Order:
        low, tick, max_lots = PRICE_BANDS[market.symbol]
        params = {
            "side": rng.choice(Side.values),
            "type": OrderType.LIMIT,
            "price": low + tick * rng.randint(0, 20),
            "size": market.lot_size * 1000 * rng.randint(1, max_lots),
            "time_in_force": rng.choice([TimeInForce.GTC] * 4 + [TimeInForce.IOC, TimeInForce.FOK]),
            "stp": rng.choice(SelfTradePrevention.values),
        }
        params["post_only"] = params["time_in_force"] == TimeInForce.GTC and rng.random() < 0.15
        return self.place(account, market, **{**params, **overrides})

    def market_order(self, rng: random.Random, account, market: Market) -> Order:
        _, _, max_lots = PRICE_BANDS[market.symbol]
        side = rng.choice(Side.values)
        if side == Side.BUY and rng.random() < 0.5:
            return self.place(account, market, side=side, type=OrderType.MARKET, funds=Decimal(rng.randint(5, 300)))
        return self.place(account, market, side=side, type=OrderType.MARKET,
                          size=market.lot_size * 1000 * rng.randint(1, max_lots),
                          time_in_force=rng.choice([TimeInForce.IOC, TimeInForce.FOK]))

    @staticmethod
    def place(account, market: Market, **params) -> Order:
        return trading.order_place(account=account, market=market, client_order_id=f"r-{next(_ids)}",
                                   acting_user=None, **params)

    @staticmethod
    def cancel(order: Order) -> Order:
        return trading.order_cancel(order=order, acting_user=None)

    def withdraw(self, rng: random.Random, account, asset: str | None = None) -> Withdrawal:
        asset = asset or rng.choice(list(FUNDING))
        amount = (FUNDING[asset] / 100 * rng.randint(1, 20)).quantize(Decimal("0.01"))
        return accounts.withdrawal_request(account=account, asset=asset, amount=amount, acting_user=None,
                                           idempotency_key=f"w-{next(_ids)}", **DESTINATIONS[asset])

    @staticmethod
    def withdrawal_cancel(withdrawal: Withdrawal) -> Withdrawal:
        return accounts.withdrawal_cancel(withdrawal=withdrawal, acting_user=None)

    def withdrawal_complete(self, withdrawal: Withdrawal) -> Withdrawal:
        """Approve (by two people when four eyes are needed) and send."""
        for approver in self.approvers:
            withdrawal = accounts.withdrawal_approve(withdrawal=withdrawal, acting_user=approver)
            if withdrawal.status == FundingStatus.APPROVED:
                break
        return accounts.withdrawal_complete(withdrawal=withdrawal, acting_user=self.approvers[0])

    def match_all(self, *, rounds: int = 100) -> None:
        """Run every market's matcher until no ``new`` order is left (bounded: a stuck matcher fails)."""
        for market in self.markets:
            for _ in range(rounds):
                summary = trading.market_match(market_id=market.pk, wait=True)
                if not summary.more:
                    break
            else:
                raise AssertionError(f"{market.symbol}: the matcher still had work after {rounds} batches")


def refused(action, *args, **kwargs):
    """Run a client action; a domain refusal (insufficient funds, order already filled...) is a normal outcome."""
    try:
        return action(*args, **kwargs)
    except DomainError as exc:
        return exc
