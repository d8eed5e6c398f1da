"""A quoting desk for tests: a controllable clock, a hand-made book on BTC-USD, the firm's inventory and limits."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ledger.models import Balance, JournalEntry, Posting
from tests.factories import ClientAccountFactory, MarketFactory, StaffFactory, fund
from tests.trading.helpers import match, place
from trading import clock as trading_clock
from trading.models import InventoryLimit
from trading.services import quotes

_references = itertools.count(1)

# The book of every quote test: asks 0.5 @ 100, 1.0 @ 101, 2.0 @ 103; bids 1.0 @ 99, 1.0 @ 98.
ASKS = [("100.00", "0.5"), ("101.00", "1.0"), ("103.00", "2.0")]
BIDS = [("99.00", "1.0"), ("98.00", "1.0")]


class Clock:
    """``trading.clock.now`` under the test's control."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture
def clock(monkeypatch) -> Clock:
    controlled = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    monkeypatch.setattr(trading_clock, "now", controlled)
    return controlled


def superuser():
    return StaffFactory(is_superuser=True, username=f"desk-{next(_references)}")


def inventory_fund(asset: str, amount, *, by=None):
    return quotes.inventory_fund(asset=asset, amount=Decimal(str(amount)), reference=f"test-{next(_references)}",
                                 reason="test inventory", acting_user=by or superuser())


def limits_set(asset: str, max_long, max_short="0") -> InventoryLimit:
    limit, _ = InventoryLimit.objects.update_or_create(
        asset_id=asset, defaults={"max_long": Decimal(str(max_long)), "max_short": Decimal(str(max_short))})
    return limit


def book_build(market, asks=ASKS, bids=BIDS):
    """A maker account rests the given asks and bids (price, size) on ``market``."""
    maker = ClientAccountFactory(legal_name="Market maker")
    fund(maker, market.base_id, "100")
    fund(maker, market.quote_id, "100000")
    for price, size in asks:
        place(maker, market, "sell", size=size, price=price)
    for price, size in bids:
        place(maker, market, "buy", size=size, price=price)
    match(market)
    return maker


@pytest.fixture
def desk(db):
    """BTC-USD with the book above; the firm holds 10 BTC and 100,000 USD of inventory within wide limits."""
    market = MarketFactory()
    book_build(market)
    for asset, amount, max_long in (("BTC", "10", "100"), ("USD", "100000", "1000000")):
        limits_set(asset, max_long)
        inventory_fund(asset, amount)
    return market


def client_with(**balances):
    account = ClientAccountFactory()
    for asset, amount in balances.items():
        fund(account, asset, amount)
    return account


def inventory(asset: str) -> Decimal:
    row = Balance.objects.filter(account__code="firm:inventory", asset_id=asset).first()
    return row.amount if row else Decimal(0)


def books_snapshot() -> tuple:
    """Everything a refused operation must leave untouched."""
    return (JournalEntry.objects.count(), Posting.objects.count(),
            sorted(Balance.objects.values_list("account_id", "asset_id", "amount", "held")))
