"""WebSocket streams end to end (README "Streams"): real server and streamer processes, real PostgreSQL and
Redis, the ``websockets`` client."""

from __future__ import annotations

import time

import pytest

from tests.streams.servers import Client, StalledClient, order, rest_book, settle

pytestmark = pytest.mark.django_db(transaction=True)

MARKET = ["BTC-USD"]
BURST = 200


def subscribed(client: Client, channels: list[str], markets=MARKET) -> dict:
    client.send(type="subscribe", channels=channels, markets=markets)
    return client.of_type("subscriptions")


def test_a_trade_placed_over_rest_reaches_every_channel_in_sequence(stream_server, alice, seller):
    public = Client(stream_server.url)
    buyer_ws = Client(stream_server.url, api_client=alice)
    seller_ws = Client(stream_server.url, api_client=seller)
    subscribed(public, ["level2", "matches", "ticker", "heartbeat"])
    snapshot = public.of_type("snapshot")
    assert snapshot["bids"] == [] and snapshot["asks"] == []
    start = snapshot["sequence"]
    assert rest_book(alice)["sequence"] == start
    subscribed(buyer_ws, ["user"], markets=[])
    subscribed(seller_ws, ["user"], markets=[])

    resting = order(seller, "sell", "0.5", "20000.00", 1)
    settle()
    update = public.of_type("l2update")
    assert update["sequence"] == start + 1
    assert update["changes"] == [["sell", "20000.00", "0.50000000"]]

    taken = order(alice, "buy", "0.2", "20000.00", 2)
    settle()
    update = public.of_type("l2update")
    assert update["sequence"] == start + 2
    assert update["changes"] == [["sell", "20000.00", "0.30000000"]]
    match = public.of_type("match")
    assert (match["price"], match["size"], match["taker_side"]) == ("20000.00", "0.20000000", "buy")
    ticker = public.of_type("ticker")
    assert (ticker["last_price"], ticker["best_ask"], ticker["sequence"]) == ("20000.00", "20000.00", start + 2)
    assert public.of_type("heartbeat", timeout=3, sequence=start + 2)["market"] == "BTC-USD"  # every second
    book = rest_book(alice)
    assert book["sequence"] == start + 2
    assert [(a["price"], a["size"]) for a in book["asks"]] == [("20000.00", "0.30000000")]

    for ws, own_order, role in ((buyer_ws, taken, "taker"), (seller_ws, resting, "maker")):
        events = []
        while not any(e["type"] == "fill.created" for e in events):
            events.append(ws.of_type("user")["event"])
        while True:  # the rest of the batch's events of this account, if any
            try:
                events.append(ws.of_type("user", timeout=1)["event"])
            except AssertionError:
                break
        seqs = [e["account_seq"] for e in events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        fill = next(e["data"] for e in events if e["type"] == "fill.created")
        assert (fill["order_id"], fill["liquidity"], fill["size"]) == (own_order["id"], role, "0.20000000")
        assert fill["balances"]  # the balances after the fill
    for ws in (public, buyer_ws, seller_ws):
        ws.close()


def test_a_client_that_reconnects_resyncs_from_rest_and_ends_with_the_rest_book(stream_server, alice, seller):
    first = Client(stream_server.url)
    subscribed(first, ["level2"])
    first.of_type("snapshot")
    order(seller, "sell", "1", "20010.00", 1)
    settle()
    first.of_type("l2update")
    first.close()

    # Missed while away: a new level, a partial fill, another level.
    order(seller, "sell", "1", "20020.00", 2)
    order(alice, "buy", "0.4", "20010.00", 3)
    order(alice, "buy", "0.25", "19990.00", 4)
    settle()

    again = Client(stream_server.url)
    subscribed(again, ["level2"])
    snapshot = again.of_type("snapshot")
    book = {"buy": {p: s for p, s in snapshot["bids"]}, "sell": {p: s for p, s in snapshot["asks"]}}
    sequence = snapshot["sequence"]
    order(seller, "sell", "0.5", "20030.00", 5)
    bid = order(alice, "buy", "1", "19980.00", 6)
    settle()
    # Every kind of book change is followed: an amend that reduces in place, a cancel.
    assert alice.patch(f"/api/v1/orders/{bid['id']}/", {"size": "0.6"}, format="json").status_code == 200
    ask = order(seller, "sell", "0.7", "20040.00", 7)
    settle()
    assert seller.delete(f"/api/v1/orders/{ask['id']}/").status_code == 200
    settle()
    rest = rest_book(alice)
    while sequence < rest["sequence"]:
        update = again.of_type("l2update")
        assert update["sequence"] == sequence + 1  # no gap: nothing to resync
        sequence = update["sequence"]
        for side, price, size in update["changes"]:
            if size == "0.00000000":
                book[side].pop(price, None)
            else:
                book[side][price] = size
    assert sequence == rest["sequence"]
    assert sorted(book["buy"].items(), reverse=True) == [(level["price"], level["size"]) for level in rest["bids"]]
    assert sorted(book["sell"].items()) == [(level["price"], level["size"]) for level in rest["asks"]]
    again.close()


def test_an_unauthenticated_user_subscription_is_refused(stream_server, alice):
    anonymous = Client(stream_server.url)
    anonymous.send(type="subscribe", channels=["user"])
    error = anonymous.of_type("error")
    assert error["code"] == "authentication_required"
    anonymous.send(type="subscribe", channels=["nonsense"], markets=MARKET)
    assert anonymous.of_type("error")["code"] == "unknown_channel"
    anonymous.ws.send("not json")
    assert anonymous.of_type("error")["code"] == "invalid_message"
    anonymous.close()

    alice.secret = alice.secret[:-2] + "xx"
    refused = Client(stream_server.url, api_client=alice)
    with pytest.raises(Exception) as closed:
        refused.ws.recv(timeout=5)
    assert getattr(closed.value, "rcvd", None) is not None and closed.value.rcvd.code == 4001


def book_burst(market, count: int, levels: int) -> int:
    """``count`` book changes of ``levels`` price levels each, committed one by one as a matcher batch writes
    them (the market's sequence bumped with its ``book.changed`` event), then numbered. Returns the last
    sequence. The orders are fictitious: this is a firehose for the level2 channel, not a trading scenario."""
    from django.db import transaction
    from django.db.models import F

    from events.services import NewEvent, events_record
    from events.types import BOOK_CHANGED
    from trading.models import Market

    for n in range(count):
        with transaction.atomic():
            Market.objects.filter(pk=market.pk).update(match_seq=F("match_seq") + 1)
            market.refresh_from_db(fields=["match_seq", "cancel_seq"])
            changes = [[10_000_000 + n * levels + i, "sell", f"{30000 + n * levels + i}.00", "0.1"]
                       for i in range(levels)]
            events_record([NewEvent(BOOK_CHANGED, None, {"sequence": market.book_sequence, "orders": changes,
                                                         "reset": False}, market.pk)])
    settle()
    return market.book_sequence


@pytest.fixture
def small_buffers(tmp_path, streams_redis, market):
    from tests.streams.servers import StreamServer

    # 60 messages: the stalled client's kernel buffers hold a few, so it overflows long before the burst of 200
    # ends; the fast client's reader thread shares the GIL with the burst's commits and, on a loaded machine,
    # fell more than 20 behind (CI, 2026-11-29).
    server = StreamServer(tmp_path, streams_redis, STREAMS_BUFFER_MESSAGES="60", STREAMS_SEND_BUFFER_BYTES="8192")
    yield server
    server.stop()


def test_a_slow_client_is_cut_off_without_delaying_the_others(small_buffers, market):
    slow = StalledClient(small_buffers.port)
    slow.send(type="subscribe", channels=["level2"], markets=MARKET)
    start = slow.read_until(lambda m: m["type"] == "snapshot")["sequence"]
    fast = Client(small_buffers.url)
    subscribed(fast, ["level2"])
    assert fast.of_type("snapshot")["sequence"] == start
    # From here on the slow client reads nothing.

    began = time.monotonic()
    last = book_burst(market, count=BURST, levels=100)  # messages of ~3 KB: far more than the buffers hold
    sequence = start
    while sequence < last:
        update = fast.of_type("l2update", timeout=20)
        assert update["sequence"] == sequence + 1
        sequence = update["sequence"]
    took = time.monotonic() - began
    assert took < 30, f"the fast client waited {took:.1f}s"

    texts, close = slow.read_to_the_end()
    assert close is not None, f"no close frame after {len(texts)} messages\n" + small_buffers.log_text()
    assert close.code == 4008 and "slow consumer" in close.reason
    updates = [m["sequence"] for m in texts if m["type"] == "l2update"]
    assert updates == list(range(start + 1, start + 1 + len(updates)))  # what it got was in order, no gap
    assert len(updates) < BURST  # then the close, never the rest
    fast.close()


@pytest.fixture
def in_memory_server(tmp_path, streams_redis, market):
    from tests.streams.servers import StreamServer

    server = StreamServer(tmp_path, streams_redis, in_memory=True)
    yield server
    server.stop()


def test_without_redis_the_asgi_process_streams_by_itself(in_memory_server, seller):
    client = Client(in_memory_server.url)
    subscribed(client, ["level2"])
    start = client.of_type("snapshot")["sequence"]
    order(seller, "sell", "1", "20500.00", 1)
    settle()
    update = client.of_type("l2update")
    assert (update["sequence"], update["changes"]) == (start + 1, [["sell", "20500.00", "1.00000000"]])
    client.close()


@pytest.fixture
def tight_limits(tmp_path, streams_redis, market):
    from tests.streams.servers import StreamServer

    server = StreamServer(tmp_path, streams_redis, STREAMS_MAX_CONNECTIONS_PER_IP="2", STREAMS_MAX_SUBSCRIPTIONS="2")
    yield server
    server.stop()


def test_connections_per_ip_and_subscriptions_per_connection_are_limited(tight_limits):
    first, second = Client(tight_limits.url), Client(tight_limits.url)
    third = Client(tight_limits.url)
    with pytest.raises(Exception) as closed:
        third.ws.recv(timeout=5)
    assert closed.value.rcvd.code == 4029 and "IP" in closed.value.rcvd.reason
    first.send(type="subscribe", channels=["level2", "matches", "ticker"], markets=MARKET)
    assert first.of_type("error")["code"] == "too_many_subscriptions"
    assert subscribed(first, ["matches", "ticker"])["channels"] == [{"name": "matches", "markets": [first_market_id()]},
                                                                   {"name": "ticker", "markets": [first_market_id()]}]
    first.close()
    second.close()
    time.sleep(1)  # the server notices the closes
    again = Client(tight_limits.url)  # a closed connection no longer counts
    assert subscribed(again, ["matches"])["channels"][0]["name"] == "matches"
    again.close()


def first_market_id() -> int:
    from trading.models import Market

    return Market.objects.get(symbol="BTC-USD").pk
