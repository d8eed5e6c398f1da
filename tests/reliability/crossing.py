"""A batch whose outcome is known to the unit: ``k`` asks of 0.01 BTC at 100.00 from one client, then ``k``
bids at 101.00 from another, all ``new``. One matcher run fills every bid against one ask at 100.00 as taker."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ledger import services as ledger
from ledger.models import JournalEntry, Purpose
from tests.factories import assert_balance
from tests.reliability.desk import FUNDING, Desk
from trading.models import Fill, Market, Order, OrderStatus, OrderType, Side

SIZE, ASK, BID = Decimal("0.01"), Decimal("100.00"), Decimal("101.00")
# Per fill: notional 1.00; the buyer (taker, 0.2%) pays 1.002 rounded up, the seller (maker, 0.1%) gets 0.999 down.
BUYER_PAYS, SELLER_GETS = Decimal("1.01"), Decimal("0.99")


@dataclass
class Crossing:
    desk: Desk
    market: Market
    k: int

    @classmethod
    def place(cls, k: int) -> Crossing:
        desk = Desk.open(accounts=2)
        market = desk.markets[0]
        seller, buyer = desk.accounts
        for _ in range(k):
            desk.place(seller, market, side=Side.SELL, type=OrderType.LIMIT, price=ASK, size=SIZE)
        for _ in range(k):
            desk.place(buyer, market, side=Side.BUY, type=OrderType.LIMIT, price=BID, size=SIZE)
        return cls(desk, market, k)

    def assert_untouched(self) -> None:
        """Nothing of a batch is visible: no fill, no trade entry, every order new, the market's batch count 0."""
        assert Fill.objects.count() == 0
        assert not JournalEntry.objects.filter(kind="trade").exists()
        assert Order.objects.filter(status=OrderStatus.NEW).count() == 2 * self.k
        assert Market.objects.get(pk=self.market.pk).match_seq == 0

    def assert_matched_once(self) -> None:
        """Exactly ``k`` fills, every order filled, every balance moved exactly once."""
        seller, buyer = self.desk.accounts
        assert Fill.objects.count() == self.k
        assert JournalEntry.objects.filter(kind="trade").count() == self.k
        assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.FILLED}
        assert_balance(seller, "BTC", FUNDING["BTC"] - self.k * SIZE, held="0")
        assert_balance(buyer, "BTC", FUNDING["BTC"] + self.k * SIZE, held="0")
        assert_balance(seller, "USD", FUNDING["USD"] + self.k * SELLER_GETS, held="0")
        assert_balance(buyer, "USD", FUNDING["USD"] - self.k * BUYER_PAYS, held="0")
        assert_balance(ledger.firm_account(Purpose.FEES), "USD", self.k * (BUYER_PAYS - SELLER_GETS))
