"""POST /api/v1/orders/batch/: up to 50 orders in one request and one transaction, each validated and answered as
POST /orders/ would answer it alone, per-order idempotency, a weight of one request per order, and nothing left
behind by a refused order or a failed batch."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditLog
from events.models import Event
from ledger.models import Balance, Hold
from tests.api import api_client_for
from tests.factories import MarketFactory, assert_balance, fund
from tests.ops.test_health_and_metrics import _metric, _scrape
from tests.reliability.db import RowLock, backend_pid, in_thread, wait_until, waiting_on
from tests.trading.test_risk import limits
from trading import selectors, services
from trading.errors import InvalidOrder
from trading.models import MarketStatus, Order

pytestmark = pytest.mark.django_db
D = Decimal
BATCH = "/api/v1/orders/batch/"


def order(n, **overrides) -> dict:
    """A limit buy of 0.1 BTC at 20,000 USD (holds 2,004.00 USD with the 0.2% taker fee)."""
    return {"market": "BTC-USD", "side": "buy", "size": "0.1", "price": "20000.00", "client_order_id": f"b-{n}",
            **overrides}


def batch(client, orders):
    return client.post(BATCH, {"orders": orders}, format="json")


def statuses(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [result["status"] for result in response.json()["results"]]


def placed_ids(response) -> list[int | None]:
    return [result["order"]["id"] if result["status"] == 201 else None for result in response.json()["results"]]


def test_every_order_accepted_is_answered_in_order_as_post_orders_answers_it(market, alice):
    fund(alice.account, "BTC", "1")
    response = batch(alice, [order(1), order(2, side="sell", size="0.25", price="21000.00"),
                             order(3, price="19000.00")])
    assert statuses(response) == [201, 201, 201]
    results = response.json()["results"]
    assert [r["order"]["client_order_id"] for r in results] == ["b-1", "b-2", "b-3"]
    for result in results:
        assert set(result) == {"status", "order"}
        assert alice.get(f"/api/v1/orders/{result['order']['id']}/").json() == result["order"]
    # A buy holds price x size x 1.002 (2,004.00 + 1,903.80); a sell holds its size.
    assert_balance(alice.account, "USD", "50000", held="3907.80")
    assert_balance(alice.account, "BTC", "1", held="0.25")
    assert Order.objects.filter(account=alice.account, status="new").count() == 3


def test_a_refused_order_rolls_back_alone_and_gets_the_answer_post_orders_gives(market, alice):
    before = _scrape()
    accepted0 = _metric(before, "brokerage_orders_accepted_total", market="BTC-USD") or 0
    tick0 = _metric(before, "brokerage_orders_rejected_total", code="invalid_tick") or 0
    bad_tick, bad_size = order(2, price="20000.001"), order(4, size=0.1)
    response = batch(alice, [order(1), bad_tick, order(3), bad_size, order(5, leverage="10")])
    assert statuses(response) == [201, 400, 201, 400, 400]
    errors = [r["error"] for r in response.json()["results"] if r["status"] != 201]
    assert [(e["code"], e["field"]) for e in errors] == [("invalid_tick", "price"), ("decimal_string_required", "size"),
                                                         ("unknown_field", "leverage")]
    # Exactly the bodies the single endpoint answers (which places nothing for them either).
    for sent, error in zip([bad_tick, bad_size, order(5, leverage="10")], errors, strict=True):
        alone = alice.post("/api/v1/orders/", sent, format="json")
        assert (alone.status_code, alone.json()) == (400, error)
    assert sorted(Order.objects.values_list("client_order_id", flat=True)) == ["b-1", "b-3"]
    assert_balance(alice.account, "USD", "50000", held="4008.00")
    after = _scrape()
    assert _metric(after, "brokerage_orders_accepted_total", market="BTC-USD") == accepted0 + 2
    # As POST /orders/ counts them: the service's refusals, not the serializer's.
    assert _metric(after, "brokerage_orders_rejected_total", code="invalid_tick") == tick0 + 2


def test_later_orders_see_the_holds_and_risk_counters_of_earlier_ones(market, alice):
    sixty_percent = {"size": "1.5"}  # 1.5 x 20,000 x 1.002 = 30,060.00 of 50,000 USD
    response = batch(alice, [order(1, **sixty_percent), order(2, **sixty_percent), order(3)])
    assert statuses(response) == [201, 400, 201]
    error = response.json()["results"][1]["error"]
    assert (error["code"], error["field"]) == ("insufficient_funds", "size")
    assert_balance(alice.account, "USD", "50000", held="32064.00")
    assert not Order.objects.filter(client_order_id="b-2").exists()  # its row and audit row rolled back with it
    assert AuditLog.objects.filter(action="order.place").count() == 2
    assert list(Hold.objects.filter(status="active").values_list("remaining", flat=True).order_by("id")) == [
        D("30060.00"), D("2004.00")]

    limits(market, max_open_orders=4, updated_at=timezone.now())  # two open already
    response = batch(alice, [order(4), order(5), order(6)])
    assert statuses(response) == [201, 201, 400]
    assert response.json()["results"][2]["error"]["code"] == "open_order_limit_reached"


def test_an_order_for_a_halted_market_is_refused_alone(market, alice):
    eth = MarketFactory(symbol="ETH-USD", base_id="ETH", quote_id="USD")
    services.market_status_set(market=eth, status=MarketStatus.HALTED, acting_user=None, reason="batch test")
    response = batch(alice, [order(1), order(2, market="ETH-USD", size="1", price="2000.00"), order(3)])
    assert statuses(response) == [201, 409, 201]
    error = response.json()["results"][1]["error"]
    assert (error["code"], error["field"]) == ("market_not_open", "market")
    assert not Order.objects.filter(market=eth).exists()
    eth.delete()  # and out of this process's market cache, which outlives the test (other tests make their own)
    assert selectors.market_reloaded("ETH-USD") is None


def test_resending_the_batch_replays_every_order_and_places_nothing_new(market, alice):
    first = batch(alice, [order(1), order(2), order(3, price="1.001")])
    assert statuses(first) == [201, 201, 400]
    counts = (Order.objects.count(), Hold.objects.count(), AuditLog.objects.count(), Event.objects.count())
    again = batch(alice, [order(1), order(2), order(3, price="1.001")])
    assert statuses(again) == [201, 201, 400]
    assert placed_ids(again) == placed_ids(first)
    assert (Order.objects.count(), Hold.objects.count(), AuditLog.objects.count(), Event.objects.count()) == counts
    assert_balance(alice.account, "USD", "50000", held="4008.00")


def test_a_client_order_id_reused_with_other_parameters_is_that_orders_conflict(market, alice):
    first = batch(alice, [order(1), order(2)])
    response = batch(alice, [order(1), order(2, size="0.2"), order(3)])
    assert statuses(response) == [201, 409, 201]
    assert placed_ids(response)[0] == placed_ids(first)[0]
    error = response.json()["results"][1]["error"]
    assert (error["code"], error["field"]) == ("client_order_id_conflict", "client_order_id")
    assert Order.objects.count() == 3 and Order.objects.get(client_order_id="b-2").size == D("0.1")


def test_the_same_client_order_id_twice_in_a_batch_is_a_replay_or_a_conflict(market, alice):
    response = batch(alice, [order(1), order(1), order(2), order(2, price="19000.00")])
    assert statuses(response) == [201, 201, 201, 409]
    ids = placed_ids(response)
    assert ids[0] == ids[1] and ids[2] not in (ids[0], None)
    assert response.json()["results"][3]["error"]["code"] == "client_order_id_conflict"
    assert Order.objects.count() == 2
    assert_balance(alice.account, "USD", "50000", held="4008.00")


def test_await_fill_is_not_offered_in_a_batch(market, alice):
    response = batch(alice, [order(1, await_fill_ms=100), order(2)])
    assert statuses(response) == [400, 201]
    error = response.json()["results"][0]["error"]
    assert (error["code"], error["field"]) == ("unknown_field", "await_fill_ms")


def test_an_order_that_is_not_an_object_is_refused_alone(market, alice):
    response = batch(alice, [["market", "BTC-USD"], None, order(1)])
    assert statuses(response) == [400, 400, 201]
    assert [r["error"]["code"] for r in response.json()["results"][:2]] == ["invalid", "null"]


@pytest.mark.parametrize("body, code", [
    ({"orders": []}, "empty"),
    ({"orders": [order(n) for n in range(51)]}, "max_length"),
    ({"orders": order(1)}, "not_a_list"),
    ({"orders": "b-1"}, "not_a_list"),
    ({}, "required"),
    ({"orders": [order(1)], "atomic": True}, "unknown_field"),
])
def test_a_body_that_is_no_batch_is_refused_whole(market, alice, body, code):
    response = alice.post(BATCH, body, format="json")
    assert response.status_code == 400, response.json()
    assert (response.json()["code"], response.json()["field"]) == (code, "orders" if code != "unknown_field"
                                                                    else "atomic")
    assert not Order.objects.exists()


def test_a_body_that_is_not_an_object_is_refused(market, alice):
    response = alice.post(BATCH, [order(1)], format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert not Order.objects.exists()


def test_fifty_orders_fit_in_one_batch(market, alice):
    response = batch(alice, [order(n, size="0.001") for n in range(50)])
    assert statuses(response) == [201] * 50
    assert Order.objects.count() == 50


def test_the_service_places_no_more_than_fifty_orders_a_batch(market, alice):
    orders = [{"market": market, "side": "buy", "size": D("0.1"), "price": D("20000")}] * 51
    with pytest.raises(InvalidOrder) as refused:
        services.orders_place_batch(account=alice.account, orders=orders, acting_user=None)
    assert (refused.value.code, refused.value.field) == ("max_length", "orders")
    assert not Order.objects.exists()


def test_a_read_only_key_cannot_place_a_batch(market):
    viewer = api_client_for(role=Role.VIEWER)
    response = batch(viewer, [order(1)])
    assert (response.status_code, response.json()["code"]) == (403, "scope_required")
    assert not Order.objects.exists()


def test_a_batch_weighs_one_request_per_order_in_the_rate_limits(market, alice, redis_rates):
    redis_rates(api_key="5/min")
    assert statuses(batch(alice, [order(1), order(2), order(3)])) == [201] * 3
    refused = batch(alice, [order(4), order(5), order(6)])  # 3 + 3 > 5: refused whole
    assert (refused.status_code, refused.json()["code"]) == (429, "throttled") and int(refused["Retry-After"]) > 0
    assert alice.post("/api/v1/orders/", order(7), format="json").status_code == 201  # 4 of 5
    assert batch(alice, [order(8), order(9)]).status_code == 429
    assert statuses(batch(alice, [order(10)])) == [201]  # 5 of 5
    assert sorted(Order.objects.values_list("client_order_id", flat=True)) == ["b-1", "b-10", "b-2", "b-3", "b-7"]


def test_the_account_and_ip_budgets_count_the_weight_too(market, alice, redis_rates):
    redis_rates(account="4/min")
    other_key = api_client_for(account=alice.account, role=Role.TRADER)
    assert statuses(batch(alice, [order(1), order(2), order(3)])) == [201] * 3
    assert batch(other_key, [order(4), order(5)]).status_code == 429
    redis_rates(account=None, ip="6/min")
    assert batch(other_key, [order(6), order(7), order(8), order(9)]).status_code == 429  # 3 + 4 > 6 for the IP
    assert statuses(batch(other_key, [order(6), order(7), order(8)])) == [201] * 3  # 3 + 3


def test_placed_orders_write_one_audit_row_and_their_events_refused_ones_none(market, alice):
    response = batch(alice, [order(1), order(2, price="0.001"), order(3, size="100"), order(4)])
    assert statuses(response) == [201, 400, 400, 201]
    placed = [i for i in placed_ids(response) if i is not None]
    audited = AuditLog.objects.filter(action="order.place")
    assert sorted(int(i) for i in audited.values_list("object_id", flat=True)) == sorted(placed)
    accepted = Event.objects.filter(type="order.accepted", account_id=alice.account.pk)
    assert sorted(e.payload["id"] for e in accepted) == sorted(placed)
    assert Event.objects.filter(type="hold.placed", account_id=alice.account.pk).count() == 2


ERROR_ON_THIRD_ORDER = """
CREATE FUNCTION test_batch_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.client_order_id = 'b-3' THEN RAISE EXCEPTION 'disk full' USING ERRCODE = 'XX000'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER test_batch_fail BEFORE INSERT ON trading_order FOR EACH ROW EXECUTE FUNCTION test_batch_fail();
"""


@pytest.mark.django_db(transaction=True)
def test_a_database_error_mid_batch_fails_the_request_and_commits_nothing(market, alice):
    with connection.cursor() as cursor:
        cursor.execute(ERROR_ON_THIRD_ORDER)
    try:
        alice.raise_request_exception = False
        response = batch(alice, [order(1), order(2), order(3), order(4)])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_batch_fail ON trading_order; DROP FUNCTION test_batch_fail();")
    assert (response.status_code, response.json()["code"]) == (500, "server_error")
    assert not Order.objects.exists() and not Hold.objects.exists()
    assert not AuditLog.objects.filter(action="order.place").exists()
    assert not Event.objects.filter(type__in=["order.accepted", "hold.placed"]).exists()
    assert_balance(alice.account, "USD", "50000", held="0")
    # The same batch, the database well again: placed whole.
    assert statuses(batch(alice, [order(1), order(2), order(3), order(4)])) == [201] * 4


@pytest.mark.django_db(transaction=True)
def test_a_batch_never_deadlocks_with_a_matcher_locking_the_same_balances_in_id_order(market, alice):
    """A buy then a sell reserve the quote, then the base. A matcher batch settling this client's fills locks both
    rows in id order in one statement; here it has taken the first (a second connection), and takes the second
    once the batch waits for it. Were the batch to lock them one order at a time, each would wait for the other."""
    fund(alice.account, "BTC", "1")  # the BTC row is created after the USD row: its id is higher
    usd, btc = (Balance.objects.get(account__client=alice.account, asset_id=a) for a in ("USD", "BTC"))
    assert usd.pk < btc.pk
    batch_pid = {}

    def batch_placed():
        batch_pid["pid"] = backend_pid()
        return batch(alice, [order(1, side="sell", size="0.1", price="21000.00"), order(2)])

    with ThreadPoolExecutor(max_workers=1) as pool, RowLock(usd) as matcher:
        placed = in_thread(pool, batch_placed)
        wait_until(lambda: batch_pid.get("pid") in waiting_on(matcher.pid), what="the batch waits for the USD row")
        matcher.connection.execute("SELECT id FROM ledger_balance WHERE id = %s FOR NO KEY UPDATE", [btc.pk])
        matcher.release()
        response = placed.result(timeout=30)
    assert statuses(response) == [201, 201]
    assert_balance(alice.account, "BTC", "1", held="0.1")
    assert_balance(alice.account, "USD", "50000", held="2004.00")


def test_a_batch_wakes_the_matcher_and_the_event_sequencer_once_after_its_commit(
        market, alice, django_capture_on_commit_callbacks):
    # The first order is refused by its write (a short balance); the orders placed after it are woken for all the
    # same, once.
    with django_capture_on_commit_callbacks() as callbacks:
        response = batch(alice, [order(1, size="3"), order(2, size="0.5"), order(3, size="0.5")])
    assert statuses(response) == [400, 201, 201]
    assert sorted(str(callback.once_key) for callback in callbacks) == [
        "('market-wake', %d)" % market.pk, "events-written"]


def test_single_orders_each_wake_after_their_own_commit(market, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        for n in (1, 2):
            assert alice.post("/api/v1/orders/", order(n), format="json").status_code == 201
    assert len(callbacks) == 4  # per order: the market's wake-up and the sequencer's
