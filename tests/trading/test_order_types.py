"""Stop and stop-limit orders, good-til-time, amend, await-fill, metadata and the new self-trade modes, through
the services and the API against PostgreSQL: holds, events and reconciliation to the last unit."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from ledger.models import Hold, HoldStatus
from tests.factories import ClientAccountFactory, MarketFactory, assert_balance, fund
from tests.reliability.invariants import assert_books_consistent
from tests.trading.helpers import match, place, reloaded
from trading import services
from trading.books import books_clear
from trading.errors import InvalidOrder, MarketNotOpen, OrderNotOpen
from trading.models import MarketStatus, Order, OrderStatus

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def fresh_books():
    books_clear()
    yield
    books_clear()


@pytest.fixture
def market():
    return MarketFactory(min_size=D("0.001"), max_size=D("10"), lot_size=D("0.001"))


def trader(usd="100000", btc="10"):
    account = ClientAccountFactory()
    fund(account, "USD", usd)
    if D(btc):
        fund(account, "BTC", btc)
    return account


@pytest.fixture
def alice():
    return trader()


@pytest.fixture
def bob():
    return trader()


@pytest.fixture
def carol():
    return trader()


@pytest.fixture
def alice_api():
    from accounts.models import Role
    from tests.api import api_client_for

    client = api_client_for(role=Role.TRADER)
    fund(client.account, "USD", "50000")
    return client


def trade_at(market, price, seller, buyer, size="0.010"):
    """One trade at ``price``: a resting sell met by a buy."""
    place(seller, market, "sell", size=size, price=price)
    match(market)
    place(buyer, market, "buy", size=size, price=price)
    match(market)


def events_of(account_id) -> list[dict]:
    from events import selectors as event_selectors
    from events.services import sequence_all

    sequence_all()
    page = event_selectors.account_events(account_id=account_id, after=0, limit=1000)
    return [event_selectors.envelope(q) for q in page.events]


def types_of(order, *types):
    return [e["type"] for e in events_of(order.account_id)
            if e["type"] in types and e["data"].get("id") == order.pk]


# --- validation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, code, field", [
    ({"type": "stop", "size": "0.1"}, "stop_price_required", "stop_price"),
    ({"type": "limit", "size": "0.1", "price": "100", "stop_price": "100"}, "stop_price_not_allowed", "stop_price"),
    ({"type": "stop", "side": "buy", "size": "0.1", "stop_price": "100"}, "stop_buy_requires_funds", "funds"),
    ({"type": "stop_limit", "size": "0.1", "price": "100", "stop_price": "100.001"}, "invalid_tick", "stop_price"),
    ({"type": "stop_limit", "size": "0.1", "price": "100", "stop_price": "99", "post_only": True},
     "post_only_requires_limit", "post_only"),
    ({"type": "stop", "size": "0.1", "stop_price": "100", "price": "100"}, "price_not_allowed", "price"),
    ({"type": "limit", "size": "0.1", "price": "100", "time_in_force": "gtt"}, "expire_time_required",
     "expire_time"),
    ({"type": "limit", "size": "0.1", "price": "100", "expire_in": 60}, "expire_time_not_allowed", "expire_time"),
    ({"type": "market", "size": "0.1", "time_in_force": "gtt", "expire_in": 60}, "gtt_requires_limit",
     "time_in_force"),
    ({"type": "limit", "size": "0.1", "price": "100", "time_in_force": "gtt", "expire_in": 9.999999},
     "expire_time_too_soon", "expire_time"),
    ({"type": "limit", "size": "0.1", "price": "100", "metadata": {f"k{i}": "v" for i in range(7)}},
     "invalid_metadata", "metadata"),
    ({"type": "limit", "size": "0.1", "price": "100", "metadata": {"k": "v" * 101}}, "invalid_metadata", "metadata"),
])
def test_a_malformed_order_is_refused_with_its_code_and_leaves_nothing(market, alice, clock, kwargs, code, field):
    kwargs = {"side": "sell", **kwargs}
    if "expire_in" in kwargs:
        kwargs["expire_time"] = clock.at + timedelta(seconds=kwargs.pop("expire_in"))
    for name in ("stop_price",):
        if name in kwargs:
            kwargs[name] = D(kwargs[name])
    holds = Hold.objects.count()
    with pytest.raises(InvalidOrder) as refused:
        place(alice, market, **kwargs)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert Order.objects.count() == 0 and Hold.objects.count() == holds


@pytest.mark.parametrize("field, value, code", [
    ("metadata", "x", "not_a_dict"),
    ("metadata", [["k", "v"]], "not_a_dict"),
    ("expire_time", "tomorrow", "invalid"),
    ("expire_time", "9999-12-31T23:59:59-12:00", "out_of_range"),  # past what PostgreSQL stores
])
def test_a_malformed_field_through_the_api_is_a_400_with_a_catalogued_code(market, alice_api, field, value, code):
    from core.api.codes import all_codes

    body = {"market": "BTC-USD", "side": "buy", "size": "0.010", "price": "100.00", "time_in_force": "gtt",
            field: value}
    response = alice_api.post("/api/v1/orders/", body, format="json")

    assert response.status_code == 400, response.content
    assert (response.json()["code"], response.json()["field"]) == (code, field)
    assert code in all_codes() and not Order.objects.exists()


# --- stops ----------------------------------------------------------------------------------------------------


def test_stops_hold_at_submission_wait_and_trigger_in_trigger_order_at_the_right_price(market, alice, bob, carol):
    trade_at(market, "100.00", bob, carol)
    # Alice's sell stop-limit at 99.00 (limit 98.00) and sell stop-market at 99.50; both below the last 100.00.
    stop_limit = place(alice, market, "sell", type="stop_limit", size="0.500", price="98.00", stop_price=D("99.00"))
    stop_market = place(alice, market, "sell", type="stop", size="0.200", stop_price=D("99.50"))
    assert_balance(alice, "BTC", "10", held="0.700")  # held at submission, like any order
    match(market)
    assert reloaded(stop_limit).status == reloaded(stop_market).status == OrderStatus.PENDING_TRIGGER
    # Bids: 99.60 x 0.3 (carol), 98.50 x 1 (carol).
    place(carol, market, "buy", size="0.300", price="99.60")
    place(carol, market, "buy", size="1.000", price="98.50")
    match(market)
    assert reloaded(stop_market).status == OrderStatus.PENDING_TRIGGER  # no trade yet
    # Bob sells 0.3 at 99.60: last 99.60, above both stops. Then 0.1 at 99.00 against 98.50? No: a sell at 98.50.
    place(bob, market, "sell", size="0.300", price="99.60")
    match(market)
    assert reloaded(stop_market).status == OrderStatus.PENDING_TRIGGER
    place(bob, market, "sell", size="0.100", price="98.50")  # trades at 98.50: reaches both stops
    match(market)
    stop_market, stop_limit = reloaded(stop_market), reloaded(stop_limit)
    # Sell stops trigger highest first: the stop-market (99.50) sells 0.2 at 98.50, then the stop-limit (99.00)
    # sells 0.5 at 98.50 (its limit 98.00 allows it) and rests nothing: 0.9 - 0.1 - 0.2 = 0.6 left on the bid.
    assert (stop_market.status, stop_market.filled_size) == (OrderStatus.FILLED, D("0.2"))
    assert (stop_limit.status, stop_limit.filled_size) == (OrderStatus.FILLED, D("0.5"))
    assert stop_market.triggered_at <= stop_limit.triggered_at
    triggered = [e["data"] for e in events_of(alice.pk) if e["type"] == "order.triggered"]
    assert [d["id"] for d in triggered] == [stop_market.pk, stop_limit.pk]
    assert triggered[0]["triggered_at"] is not None and triggered[0]["stop_price"] == "99.50"
    # 0.5 x 98.50 = 49.25, less 0.2% taker fee 0.0985 = 49.1515 -> 49.15 received; 0.2 x 98.50 = 19.70 - 0.0394.
    assert stop_limit.settled_quote == D("49.15") and stop_market.settled_quote == D("19.66")
    assert_balance(alice, "BTC", "9.3", held="0")
    assert_books_consistent(matched=True)


def test_a_halted_market_triggers_nothing_and_a_rebuilt_book_keeps_the_stops(market, alice, bob, carol):
    trade_at(market, "100.00", bob, carol)
    stop = place(alice, market, "buy", type="stop_limit", size="0.100", price="102.00", stop_price=D("101.00"))
    place(bob, market, "sell", size="0.100", price="101.00")
    match(market)
    services.market_status_set(market=market, status=MarketStatus.HALTED, acting_user=None)
    with pytest.raises(MarketNotOpen):
        place(carol, market, "buy", size="0.100", price="101.00")
    assert services.market_match(market_id=market.pk).fills == 0
    assert reloaded(stop).status == OrderStatus.PENDING_TRIGGER
    services.market_status_set(market=market, status=MarketStatus.OPEN, acting_user=None)
    books_clear()  # another worker: the book, its stops and its last price come from the database
    place(carol, market, "buy", size="0.050", price="101.00")
    match(market)
    stop = reloaded(stop)
    # The trade at 101.00 triggers the stop-limit buy (limit 102.00): it takes the 0.05 left at 101.00 and rests 0.05.
    assert (stop.status, stop.filled_size) == (OrderStatus.PARTIALLY_FILLED, D("0.05"))
    assert types_of(stop, "order.triggered", "order.partially_filled") == ["order.triggered",
                                                                          "order.partially_filled"]
    assert_books_consistent(matched=True)


def test_a_cancelled_stop_releases_its_hold_and_never_triggers(market, alice, bob, carol):
    trade_at(market, "100.00", bob, carol)
    stop = place(alice, market, "buy", type="stop", funds=D("500.00"), stop_price=D("100.50"))
    match(market)
    assert_balance(alice, "USD", "100000", held="500.00")
    services.order_cancel(order=stop, acting_user=None)
    assert_balance(alice, "USD", "100000", held="0")
    trade_at(market, "101.00", bob, carol)
    assert reloaded(stop).status == OrderStatus.CANCELLED and reloaded(stop).triggered_at is None
    assert_books_consistent(matched=True)


# --- good-til-time --------------------------------------------------------------------------------------------


def test_gtt_expires_at_exactly_its_time_by_the_matcher_with_its_hold_released(market, alice, bob, clock):
    expire = clock.at + timedelta(seconds=10)  # the minimum
    order = place(alice, market, "buy", size="1.000", price="100.00", time_in_force="gtt", expire_time=expire)
    match(market)
    place(bob, market, "sell", size="0.250", price="100.00")
    match(market)
    # Held 1 x 100 x 1.002 = 100.20; paid as maker 0.25 x 100 x 1.001 = 25.025 -> 25.03; 75.17 still held.
    assert_balance(alice, "USD", "99974.97", held="75.17")
    clock.at = expire - timedelta(microseconds=1)
    match(market)
    assert reloaded(order).status == OrderStatus.PARTIALLY_FILLED
    clock.at = expire
    summary = match(market)
    order = reloaded(order)
    assert (order.status, order.reason, order.filled_size) == (OrderStatus.EXPIRED, "expired", D("0.25"))
    assert summary.orders == 0 and order.hold.status == HoldStatus.RELEASED
    assert_balance(alice, "USD", "99974.97", held="0")
    assert types_of(order, "order.expired") == ["order.expired"]
    [released] = [e["data"] for e in events_of(alice.pk) if e["type"] == "hold.released"]
    assert released["released"] == "75.17"
    assert_books_consistent(matched=True)


def test_a_gtt_order_matched_after_its_time_expires_without_trading_and_a_halt_does_not_stop_expiry(
        market, alice, bob, clock):
    place(bob, market, "sell", size="1.000", price="100.00")
    match(market)
    late = place(alice, market, "buy", size="1.000", price="100.00", time_in_force="gtt",
                 expire_time=clock.at + timedelta(seconds=30))
    clock.advance(seconds=30)
    match(market)
    assert (reloaded(late).status, reloaded(late).filled_size) == (OrderStatus.EXPIRED, D(0))
    resting = place(alice, market, "buy", size="1.000", price="99.00", time_in_force="gtt",
                    expire_time=clock.at + timedelta(seconds=60))
    match(market)
    services.market_status_set(market=market, status=MarketStatus.HALTED, acting_user=None)
    clock.advance(seconds=60)
    match(market)
    assert reloaded(resting).status == OrderStatus.EXPIRED
    assert_balance(alice, "USD", "100000", held="0")
    assert_books_consistent()


def test_the_sweep_wakes_a_market_with_orders_past_their_time(market, alice, clock):
    from trading.tasks import sweep_markets

    place(alice, market, "buy", size="1.000", price="99.00", time_in_force="gtt",
          expire_time=clock.at + timedelta(seconds=10))
    match(market)
    assert sweep_markets() == []
    clock.advance(seconds=10)
    assert sweep_markets() == [market.pk]


# --- amend ----------------------------------------------------------------------------------------------------


def test_reducing_the_size_keeps_priority_and_shrinks_the_hold(market, alice, bob, carol):
    first = place(alice, market, "sell", size="1.000", price="100.00")
    second = place(bob, market, "sell", size="1.000", price="100.00")
    match(market)
    reduced = services.order_amend(order=first, size=D("0.400"), acting_user=None)
    assert reduced.pk == first.pk and reduced.size == D("0.4")
    assert_balance(alice, "BTC", "10", held="0.400")
    place(carol, market, "buy", size="0.600", price="100.00")
    match(market)
    # Alice's reduced order is still first in the queue: it fills its 0.4, bob's gets the other 0.2.
    assert (reloaded(first).status, reloaded(first).filled_size) == (OrderStatus.FILLED, D("0.4"))
    assert reloaded(second).filled_size == D("0.2")
    assert types_of(first, "order.amended") == ["order.amended"]
    assert_books_consistent(matched=True)


def test_a_buy_reduced_gives_back_what_the_smaller_size_cannot_spend(market, alice):
    order = place(alice, market, "buy", size="1.000", price="100.00")
    match(market)
    assert_balance(alice, "USD", "100000", held="100.20")  # 1 x 100 x (1 + 0.2%)
    services.order_amend(order=order, size=D("0.300"), acting_user=None)
    assert_balance(alice, "USD", "100000", held="30.06")
    assert_books_consistent()


def test_a_new_price_or_a_larger_size_is_cancel_replace_and_loses_priority(market, alice, bob, carol):
    first = place(alice, market, "sell", size="1.000", price="100.00", metadata={"desk": "a"})
    second = place(bob, market, "sell", size="1.000", price="100.00")
    match(market)
    place(carol, market, "buy", size="0.250", price="100.00")
    match(market)
    replacement = services.order_amend(order=first, size=D("1.500"), acting_user=None)
    assert replacement.pk != first.pk and replacement.replaces_id == first.pk
    assert (reloaded(first).status, reloaded(first).reason) == (OrderStatus.CANCELLED, "replaced")
    # The new order is what remains of the new total size: 1.5 - 0.25 filled = 1.25, with the same metadata.
    assert (replacement.size, replacement.metadata) == (D("1.25"), {"desk": "a"})
    assert_balance(alice, "BTC", "9.75", held="1.250")
    match(market)
    place(carol, market, "buy", size="1.250", price="100.00")
    match(market)
    assert reloaded(second).status == OrderStatus.FILLED  # bob's is now ahead
    assert reloaded(replacement).filled_size == D("0.25")
    repriced = services.order_amend(order=replacement, price=D("101.00"), acting_user=None)
    assert (repriced.price, repriced.size, repriced.replaces_id) == (D(101), D("1.0"), replacement.pk)
    assert_books_consistent()


def test_an_amend_that_cannot_be_placed_changes_nothing(market, bob):
    poor = trader(usd="101", btc="0")
    order = place(poor, market, "buy", size="1.000", price="100.00")
    match(market)
    from ledger.errors import InsufficientFunds

    with pytest.raises(InsufficientFunds):
        services.order_amend(order=order, size=D("2.000"), acting_user=None)
    assert reloaded(order).status == OrderStatus.OPEN and Order.objects.count() == 1
    assert_balance(poor, "USD", "101", held="100.20")
    with pytest.raises(InvalidOrder) as refused:
        services.order_amend(order=order, size=D("0"), acting_user=None)
    assert refused.value.code == "not_positive"
    services.order_cancel(order=order, acting_user=None)
    with pytest.raises(OrderNotOpen):
        services.order_amend(order=order, size=D("0.5"), acting_user=None)


# --- self-trade prevention ------------------------------------------------------------------------------------


def test_decrement_and_cancel_shrinks_the_larger_order_and_its_hold(market, alice):
    resting = place(alice, market, "sell", size="2.000", price="100.00")
    match(market)
    incoming = place(alice, market, "buy", size="0.500", price="100.00", stp="decrement_and_cancel")
    match(market)
    resting, incoming = reloaded(resting), reloaded(incoming)
    assert (resting.status, resting.size) == (OrderStatus.OPEN, D("1.5"))
    assert (incoming.status, incoming.reason, incoming.size) == (OrderStatus.CANCELLED, "self_trade_prevented",
                                                                 D("0.5"))
    assert_balance(alice, "BTC", "10", held="1.500")
    assert_balance(alice, "USD", "100000", held="0")
    assert_books_consistent(matched=True)


def test_cancel_both_cancels_the_resting_and_the_incoming_order(market, alice):
    resting = place(alice, market, "sell", size="2.000", price="100.00")
    match(market)
    incoming = place(alice, market, "buy", size="0.500", price="100.00", stp="cancel_both")
    match(market)
    assert reloaded(resting).status == reloaded(incoming).status == OrderStatus.CANCELLED
    assert_balance(alice, "BTC", "10", held="0")
    assert_books_consistent(matched=True)


# --- the API: metadata, amend, await-fill ---------------------------------------------------------------------


def test_metadata_is_echoed_in_the_order_and_its_events(market, alice_api):
    body = {"market": "BTC-USD", "side": "buy", "size": "0.010", "price": "100.00",
            "metadata": {"strategy": "twap-7", "desk": ""}}
    created = alice_api.post("/api/v1/orders/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["metadata"] == {"strategy": "twap-7", "desk": ""}
    match(market)
    order_id = created.json()["id"]
    from events.services import sequence_all
    sequence_all()
    events = alice_api.get("/api/v1/events/", {"after": "0", "limit": 50}).json()["events"]
    for event in events:
        if event["type"].startswith("order."):
            assert event["data"]["metadata"] == {"strategy": "twap-7", "desk": ""}
    assert alice_api.get(f"/api/v1/orders/{order_id}/").json()["metadata"] == {"strategy": "twap-7", "desk": ""}


def test_patch_amends_idempotently(market, alice_api):
    created = alice_api.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.010",
                                                  "price": "100.00"}, format="json").json()
    match(market)
    first = alice_api.patch(f"/api/v1/orders/{created['id']}/", {"price": "99.00"}, format="json",
                            HTTP_IDEMPOTENCY_KEY="amend-1")
    assert first.status_code == 200, first.json()
    again = alice_api.patch(f"/api/v1/orders/{created['id']}/", {"price": "99.00"}, format="json",
                            HTTP_IDEMPOTENCY_KEY="amend-1")
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["replaces"] == created["id"] and Order.objects.count() == 2
    other = alice_api.patch(f"/api/v1/orders/{created['id']}/", {"price": "98.00"}, format="json",
                            HTTP_IDEMPOTENCY_KEY="amend-1")
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    nothing = alice_api.patch(f"/api/v1/orders/{first.json()['id']}/", {}, format="json")
    assert (nothing.status_code, nothing.json()["code"]) == (400, "amend_nothing")


@pytest.mark.django_db(transaction=True)
def test_await_fill_returns_the_order_once_done(market, alice_api, bob):
    place(bob, market, "sell", size="0.010", price="100.00")
    match(market)
    response = alice_api.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.010",
                                                   "price": "100.00", "await_fill_ms": 3000}, format="json")
    assert response.status_code == 201, response.json()
    # Tasks run in-process in tests: the matcher ran when the order committed, and the response shows the fill.
    assert (response.json()["status"], response.json()["filled_size"]) == ("filled", "0.01000000")


def test_await_fill_gives_up_when_the_time_passes(market, alice_api):
    import time

    started = time.monotonic()
    response = alice_api.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.010",
                                                   "price": "90.00", "await_fill_ms": 300}, format="json")
    assert response.json()["status"] in ("new", "open") and 0.3 <= time.monotonic() - started < 3
    too_long = alice_api.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.010",
                                                   "price": "90.00", "await_fill_ms": 10001}, format="json")
    assert too_long.status_code == 400


def test_decrement_and_cancel_gives_back_what_decremented_buys_no_longer_need(market, alice):
    resting_buy = place(alice, market, "buy", size="2.000", price="100.00")
    match(market)
    assert_balance(alice, "USD", "100000", held="200.40")
    place(alice, market, "sell", size="0.500", price="100.00", stp="decrement_and_cancel")
    match(market)
    assert reloaded(resting_buy).size == D("1.5")
    assert_balance(alice, "USD", "100000", held="150.30")  # 1.5 x 100 x 1.002
    small_sell = place(alice, market, "sell", size="0.500", price="101.00")
    match(market)
    taker = place(alice, market, "buy", size="2.000", price="101.00", stp="decrement_and_cancel")
    match(market)
    # The own sell at 101.00 (0.5) is cancelled; the buy, decremented to 1.5, rests at 101.00 ahead of nothing.
    assert reloaded(small_sell).status == OrderStatus.CANCELLED
    taker = reloaded(taker)
    assert (taker.status, taker.size) == (OrderStatus.OPEN, D("1.5"))
    # Held: 150.30 for the first buy and 1.5 x 101 x 1.002 = 151.803 -> 151.81 for the second.
    assert_balance(alice, "USD", "100000", held="302.11")
    assert_books_consistent(matched=True)


def test_metadata_is_echoed_in_the_trade_blotter_report(market, alice, bob):
    import csv
    import io

    from compliance.reports import report_stream
    from tests.ledger.test_reports import body_of

    place(alice, market, "sell", size="0.100", price="100.00", metadata={"book": "hedge", "ref": "A-1"})
    match(market)
    place(bob, market, "buy", size="0.100", price="100.00")
    match(market)
    from django.utils import timezone

    now = timezone.now()
    body = body_of(report_stream("trade_blotter", start=now - timedelta(hours=1), end=now + timedelta(hours=1),
                                 account=None, fmt="csv"))[1]
    [row] = list(csv.DictReader(io.StringIO(body)))
    assert (row["maker_metadata"], row["taker_metadata"]) == ('{"book":"hedge","ref":"A-1"}', "")


def test_a_triggered_stop_keeps_its_trigger_time_priority_when_the_book_is_rebuilt(market, alice, bob, carol):
    trade_at(market, "100.00", bob, carol)
    stop = place(alice, market, "buy", type="stop_limit", size="0.100", price="102.00", stop_price=D("101.00"))
    early = place(carol, market, "buy", size="0.100", price="102.00")
    match(market)
    place(bob, market, "sell", size="0.050", price="102.00")  # trades with carol's bid at 102: triggers the stop
    match(market)
    assert reloaded(stop).status == OrderStatus.OPEN
    books_clear()  # rebuilt from the database
    place(bob, market, "sell", size="0.100", price="102.00")
    match(market)
    # Carol's order was on the book before the stop triggered: it fills first, though the stop's id is older.
    assert (reloaded(early).status, reloaded(stop).filled_size) == (OrderStatus.FILLED, D("0.05"))
    assert_books_consistent(matched=True)
