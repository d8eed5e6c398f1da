"""Issue 18, finding 9 (second half): "every matcher batch of that market then failed (24 in 30 s) and unrelated
orders stayed new until the poisoned order was cancelled."

A poisoned order is one whose settlement cannot be written. The fee bound now keeps a 1.5 rate out of markets
and fee schedules, so the tests poison orders the way data gets poisoned anyway: an order row changed behind the
services' back (a rate from before the bound, a hold that no longer covers the order). The matcher rejects the
poisoned order with a reason, an audit row and an ERROR line, and settles everything else of the batch.
"""

import logging
from decimal import Decimal

import pytest

from audit.models import AuditLog
from events.models import Event
from ledger.models import Hold
from tests.factories import ClientAccountFactory, MarketFactory, assert_balance, fund
from tests.reliability.invariants import assert_books_consistent
from tests.trading.helpers import match, place, reloaded
from trading.models import Fill, Market, Order, OrderStatus

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def desk():
    """A market and four clients: buyers with USD, sellers with BTC only."""
    market = MarketFactory()  # maker 0.1%, taker 0.2%
    accounts = {name: ClientAccountFactory(legal_name=name) for name in ("buyer", "buyer2", "seller", "seller2")}
    for name in ("buyer", "buyer2"):
        fund(accounts[name], "USD", "100000")
    for name in ("seller", "seller2"):
        fund(accounts[name], "BTC", "10")
    return market, accounts


def poison_rates(order, **rates) -> None:
    """The order carries rates from before the 5% bound (placed when a supervisor could set 1.5)."""
    Order.objects.filter(pk=order.pk).update(**rates)


def isolation_errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "trading.services.isolation" and r.levelno == logging.ERROR]


def assert_ended_event(order, event_type, released=None):
    """The client learns of the isolated order the way it learns of any other end: its event and the hold's."""
    ended = Event.objects.get(type=event_type, account_id=order.account_id)
    assert (str(ended.payload["id"]), ended.payload["status"], ended.payload["reason"]) == \
        (str(order.pk), event_type.split(".")[1], "settlement_failed")
    hold_event = Event.objects.filter(type="hold.released", account_id=order.account_id).last()
    assert hold_event is not None and hold_event.id > ended.id
    if released is not None:
        assert hold_event.payload["released"] == released


def test_a_poisoned_taker_is_rejected_and_the_rest_of_its_batch_settles(desk, caplog):
    market, a = desk
    bid = place(a["buyer"], market, "buy", size="1", price="100", client_order_id="bid")
    poisoned = place(a["seller"], market, "sell", size="1", price="100", client_order_id="poisoned")
    poison_rates(poisoned, taker_fee_rate=D("1.5"))  # its proceeds would be -50 USD
    unrelated_bid = place(a["buyer2"], market, "buy", size="2", price="50", client_order_id="unrelated-bid")
    seller2 = place(a["seller2"], market, "sell", size="1", price="50", client_order_id="seller2")

    summary = match(market)  # one batch of four orders

    assert (summary.orders, summary.fills) == (4, 1)
    assert (reloaded(poisoned).status, reloaded(poisoned).reason) == (OrderStatus.REJECTED, "settlement_failed")
    assert reloaded(bid).status == OrderStatus.FILLED and reloaded(seller2).status == OrderStatus.FILLED
    assert reloaded(unrelated_bid).status == OrderStatus.OPEN
    fill = Fill.objects.get()
    assert (fill.maker_order_id, fill.taker_order_id, fill.price, fill.size) == (bid.pk, seller2.pk, D("100"), D("1"))
    # Worked example: 1 BTC at 100; the buyer pays 100 + 0.1% = 100.10, the seller gets 100 - 0.2% = 99.80.
    assert_balance(a["buyer"], "USD", "99899.90", held="0")
    assert_balance(a["seller2"], "USD", "99.80") and assert_balance(a["seller2"], "BTC", "9", held="0")
    assert_balance(a["seller"], "BTC", "10", held="0")  # the rejected order's hold is released
    assert_balance(a["seller"], "USD", "0")
    audit = AuditLog.objects.get(action="order.reject")
    assert (audit.object_id, audit.after["reason"], audit.actor_id) == (str(poisoned.pk), "settlement_failed", None)
    assert "InsufficientFunds" in audit.after["error"] and "1.50000000" in audit.after["error"]
    assert [m for m in isolation_errors(caplog) if f"order {poisoned.pk} " in m and "rejected" in m]
    assert_ended_event(poisoned, "order.rejected", released="1.00000000")
    assert_books_consistent(matched=True)


def test_the_market_keeps_matching_batch_after_batch(desk, caplog):
    market, a = desk
    for n in range(3):  # three poisoned sellers, each in a batch of its own with orders that should trade
        place(a["buyer"], market, "buy", size="1", price="100", client_order_id=f"bid-{n}")
        poison_rates(place(a["seller"], market, "sell", size="1", price="100", client_order_id=f"bad-{n}"),
                     taker_fee_rate=D("1.5"))
        place(a["seller2"], market, "sell", size="1", price="100", client_order_id=f"good-{n}")
        match(market)

    assert Order.objects.filter(status=OrderStatus.NEW).count() == 0
    assert Order.objects.filter(status=OrderStatus.REJECTED).count() == 3 and Fill.objects.count() == 3
    assert len(isolation_errors(caplog)) == 3
    assert Market.objects.get(pk=market.pk).match_seq == 3
    assert_books_consistent(matched=True)


def test_a_poisoned_resting_order_is_cancelled_and_the_taker_fills_against_the_next_one(desk, caplog):
    market, a = desk
    poisoned = place(a["seller"], market, "sell", size="1", price="100", client_order_id="resting-poisoned")
    next_ask = place(a["seller2"], market, "sell", size="1", price="101", client_order_id="next-ask")
    match(market)  # both rest
    poison_rates(poisoned, maker_fee_rate=D("1.5"))

    taker = place(a["buyer"], market, "buy", size="1", price="101", client_order_id="taker")
    match(market)

    poisoned, taker = reloaded(poisoned), reloaded(taker)
    assert (poisoned.status, poisoned.reason) == (OrderStatus.CANCELLED, "settlement_failed")
    assert poisoned.cancel_seq is not None  # other workers drop it from their books
    assert taker.status == OrderStatus.FILLED and reloaded(next_ask).status == OrderStatus.FILLED
    fill = Fill.objects.get()
    assert (fill.maker_order_id, fill.price) == (next_ask.pk, D("101"))
    assert_balance(a["seller"], "BTC", "10", held="0")
    assert AuditLog.objects.get(action="order.cancel", object_id=str(poisoned.pk)).after["reason"] == \
        "settlement_failed"
    assert [m for m in isolation_errors(caplog) if f"order {poisoned.pk} " in m and "cancelled" in m]
    assert_ended_event(poisoned, "order.cancelled")
    assert_books_consistent(matched=True)


def test_a_resting_order_whose_hold_no_longer_covers_it_is_found_by_probing(desk):
    """No invariant names the culprit: the taker settles against the next resting order once the poisoned one
    is out of the book, so the resting order is the poisoned one."""
    market, a = desk
    poisoned = place(a["seller"], market, "sell", size="1", price="100", client_order_id="thin-hold")
    next_ask = place(a["seller2"], market, "sell", size="1", price="101", client_order_id="next-ask")
    match(market)
    Hold.objects.filter(pk=poisoned.hold_id).update(remaining=D("0.00001"))  # the capture will exceed it

    taker = place(a["buyer"], market, "buy", size="1", price="101", client_order_id="taker")
    match(market)

    assert (reloaded(poisoned).status, reloaded(poisoned).reason) == (OrderStatus.CANCELLED, "settlement_failed")
    assert reloaded(taker).status == OrderStatus.FILLED
    assert Fill.objects.get().maker_order_id == next_ask.pk


def test_a_taker_whose_hold_no_longer_covers_it_is_rejected_and_the_book_is_untouched(desk):
    market, a = desk
    ask = place(a["seller"], market, "sell", size="1", price="100", client_order_id="ask")
    match(market)
    taker = place(a["buyer"], market, "buy", size="1", price="100", client_order_id="thin-taker")
    Hold.objects.filter(pk=taker.hold_id).update(remaining=D("1"))
    later = place(a["buyer2"], market, "buy", size="1", price="100", client_order_id="later")

    match(market)

    assert (reloaded(taker).status, reloaded(taker).reason) == (OrderStatus.REJECTED, "settlement_failed")
    assert reloaded(ask).status == OrderStatus.FILLED and reloaded(later).status == OrderStatus.FILLED
    assert Fill.objects.get().taker_order_id == later.pk


def test_a_lost_connection_still_rolls_back_the_batch_and_propagates(desk, monkeypatch):
    """Isolation is for data that cannot be settled, not for failures of the database or the code: those roll
    the batch back as before (and the task retries), so no order is rejected for them."""
    from django.db import OperationalError

    from trading.services import settlement

    market, a = desk
    place(a["buyer"], market, "buy", size="1", price="100")
    place(a["seller"], market, "sell", size="1", price="100")

    def lost(self, outcomes):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(settlement.BatchSettlement, "settle", lost)
    with pytest.raises(OperationalError):
        match(market)
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.NEW}
