"""Candles: the matcher's rollup, to the last unit across bucket boundaries and granularities, equal to a
recomputation from the fills, written in the fills' own transaction; the API's paging and parameters; the
backfill command; the ticker's 24 hours."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from tests.factories import ClientAccountFactory, MarketFactory, fund
from tests.trading.helpers import match, place
from trading import clock as trading_clock
from trading import outbox, sql
from trading.candles import GRANULARITIES, CandleRow, bucket_start
from trading.models import Candle, Fill

pytestmark = pytest.mark.django_db
D = Decimal
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
_symbols = itertools.count(1)


@pytest.fixture
def traders():
    alice, bob = ClientAccountFactory(), ClientAccountFactory()
    for account in (alice, bob):
        fund(account, "USD", "1000000")
        fund(account, "BTC", "100")
    return alice, bob


def trade(clock, market, maker, taker, *, maker_side: str, price: str, size: str, at: datetime) -> None:
    """One fill of ``size`` at ``price`` made at ``at``: the maker rests, the taker crosses it."""
    taker_side = "buy" if maker_side == "sell" else "sell"
    place(maker, market, maker_side, size=size, price=price)
    match(market)
    clock.at = at
    place(taker, market, taker_side, size=size, price=price)
    match(market)


def candles(market, granularity: int) -> list[tuple]:
    return [
        (c.start, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trade_count)
        for c in Candle.objects.filter(market=market, granularity=granularity).order_by("start")
    ]


def at(hh: int, mm: int, ss: int = 0, us: int = 0) -> datetime:
    return datetime(2026, 11, 26, hh, mm, ss, us, tzinfo=UTC)


# --- the worked example -----------------------------------------------------------------------------------------


@pytest.fixture
def worked_example(traders, clock):
    """Six fills over an hour and a bit (``clock`` is ``trading.clock.now``): one just before 12:00, two in one
    batch at 12:00 sharp, one a microsecond before 12:05, one at 12:05, then nothing until 13:00 (a gap)."""
    alice, bob = traders
    market = MarketFactory()
    trade(clock, market, bob, alice, maker_side="sell", price="20000.00", size="0.1", at=at(11, 59, 59, 999999))
    # Two asks, then one buy that takes both in one batch: two fills of one instant.
    place(bob, market, "sell", size="0.5", price="20010.00")
    place(bob, market, "sell", size="0.1", price="20020.00")
    match(market)
    clock.at = at(12, 0)
    place(alice, market, "buy", size="0.6", price="20020.00")
    match(market)
    trade(clock, market, alice, bob, maker_side="buy", price="19990.00", size="0.2", at=at(12, 4, 59, 999999))
    trade(clock, market, alice, bob, maker_side="buy", price="20005.00", size="0.05", at=at(12, 5))
    trade(clock, market, bob, alice, maker_side="sell", price="20100.00", size="0.1", at=at(13, 0))
    return market


def test_worked_example_to_the_last_unit(worked_example):
    m = worked_example
    assert Fill.objects.filter(market=m).count() == 6

    def one(start, price, size, quote):  # a candle of one fill
        return start, D(price), D(price), D(price), D(price), D(size), D(quote), 1

    assert candles(m, 60) == [
        one(at(11, 59), "20000", "0.1", "2000"),
        (at(12, 0), D("20010"), D("20020"), D("20010"), D("20020"), D("0.6"), D("12007"), 2),  # 10005 + 2002
        one(at(12, 4), "19990", "0.2", "3998"),
        one(at(12, 5), "20005", "0.05", "1000.25"),
        one(at(13, 0), "20100", "0.1", "2010"),  # nothing from 12:06 to 12:59: no candles
    ]
    assert candles(m, 300) == [
        one(at(11, 55), "20000", "0.1", "2000"),
        (at(12, 0), D("20010"), D("20020"), D("19990"), D("19990"), D("0.8"), D("16005"), 3),
        one(at(12, 5), "20005", "0.05", "1000.25"),
        one(at(13, 0), "20100", "0.1", "2010"),
    ]
    from_noon = (at(12, 0), D("20010"), D("20020"), D("19990"), D("20005"), D("0.85"), D("17005.25"), 4)
    assert candles(m, 900) == [one(at(11, 45), "20000", "0.1", "2000"), from_noon,
                               one(at(13, 0), "20100", "0.1", "2010")]
    assert candles(m, 3600) == [one(at(11, 0), "20000", "0.1", "2000"), from_noon,
                                one(at(13, 0), "20100", "0.1", "2010")]
    assert candles(m, 21600) == [
        one(at(6, 0), "20000", "0.1", "2000"),
        (at(12, 0), D("20010"), D("20100"), D("19990"), D("20100"), D("0.95"), D("19015.25"), 5),
    ]
    assert candles(m, 86400) == [
        (at(0, 0), D("20000"), D("20100"), D("19990"), D("20100"), D("1.05"), D("21015.25"), 6),
    ]


def test_the_api_renders_candles_as_decimal_strings_and_iso_times(worked_example):
    body = APIClient().get("/api/v1/markets/BTC-USD/candles/", {"granularity": 300}).json()
    assert body["next"] is None and body["results"] == [  # newest first
        {"start": "2026-11-26T13:00:00Z", "open": "20100.00", "high": "20100.00", "low": "20100.00",
         "close": "20100.00", "volume": "0.10000000", "quote_volume": "2010.00", "trades": 1},
        {"start": "2026-11-26T12:05:00Z", "open": "20005.00", "high": "20005.00", "low": "20005.00",
         "close": "20005.00", "volume": "0.05000000", "quote_volume": "1000.25", "trades": 1},
        {"start": "2026-11-26T12:00:00Z", "open": "20010.00", "high": "20020.00", "low": "19990.00",
         "close": "19990.00", "volume": "0.80000000", "quote_volume": "16005.00", "trades": 3},
        {"start": "2026-11-26T11:55:00Z", "open": "20000.00", "high": "20000.00", "low": "20000.00",
         "close": "20000.00", "volume": "0.10000000", "quote_volume": "2000.00", "trades": 1},
    ]


def test_start_takes_the_candle_that_holds_it_and_end_is_exclusive(worked_example):
    get = lambda **q: APIClient().get("/api/v1/markets/BTC-USD/candles/", q).json()  # noqa: E731
    starts = lambda body: [c["start"][11:16] for c in body["results"]]  # noqa: E731
    # From start on, oldest first: 12:02:30 is inside the 12:00 candle of 300 s.
    assert starts(get(granularity=300, start="2026-11-26T12:02:30Z")) == ["12:00", "12:05", "13:00"]
    assert starts(get(granularity=300, start="2026-11-26T12:02:30Z", end="2026-11-26T13:00:00Z")) == ["12:00",
                                                                                                    "12:05"]
    assert starts(get(granularity=60, end="2026-11-26T12:05:00Z")) == ["12:04", "12:00", "11:59"]
    # Another time zone is the same instant.
    assert starts(get(granularity=3600, start="2026-11-26T13:30:00+01:00")) == ["12:00", "13:00"]


def test_pages_of_candles_follow_the_cursor(worked_example):
    client = APIClient()
    seen, url = [], "/api/v1/markets/BTC-USD/candles/?granularity=60&page_size=2"
    while url:
        body = client.get(url).json()
        assert len(body["results"]) <= 2
        seen += [c["start"] for c in body["results"]]
        url = body["next"]
    assert seen == ["2026-11-26T13:00:00Z", "2026-11-26T12:05:00Z", "2026-11-26T12:04:00Z",
                    "2026-11-26T12:00:00Z", "2026-11-26T11:59:00Z"]
    forward, url = [], "/api/v1/markets/BTC-USD/candles/?granularity=60&page_size=3&start=2026-11-26T00:00:00Z"
    while url:
        body = client.get(url).json()
        forward += [c["start"] for c in body["results"]]
        url = body["next"]
    assert forward == list(reversed(seen))


def test_a_page_holds_at_most_1000_candles(market):
    fills = [(T0 + timedelta(minutes=n), D("100") + n) for n in range(1001)]
    _candles_of_minutes(market, fills)
    body = APIClient().get("/api/v1/markets/BTC-USD/candles/", {"granularity": 60, "page_size": 5000}).json()
    assert len(body["results"]) == 1000 and body["next"]
    assert body["results"][0]["start"] == "2026-11-27T04:40:00Z"  # 12:00 + 1,000 minutes
    default = APIClient().get("/api/v1/markets/BTC-USD/candles/", {"granularity": 60}).json()
    assert len(default["results"]) == 300


def _candles_of_minutes(market, fills):
    """Candles as the matcher would write them for one fill a minute (quicker than 1,001 matched trades)."""
    sql.candles_upsert(market.pk, [
        CandleRow(60, at_, price, price, price, price, D("0.001"), price * D("0.001"), 1, n, n)
        for n, (at_, price) in enumerate(fills, start=1)
    ])


@pytest.mark.parametrize(("query", "code", "field"), [
    ({}, "required", "granularity"),
    ({"granularity": "120"}, "invalid_granularity", "granularity"),
    ({"granularity": "1m"}, "invalid_granularity", "granularity"),
    ({"granularity": "60", "start": "yesterday"}, "invalid", "start"),
    ({"granularity": "60", "end": "2026-13-01T00:00:00Z"}, "invalid", "end"),
    ({"granularity": "60", "start": "2026-11-26T12:00:00+16:00"}, "out_of_range", "start"),
    ({"granularity": "60", "start": "2026-11-26T12:00:00Z", "end": "2026-11-26T12:00:00Z"}, "invalid_time_range",
     "end"),
    ({"granularity": "60", "start": "2026-11-26T13:00:00Z", "end": "2026-11-26T12:00:00Z"}, "invalid_time_range",
     "end"),
])
def test_bad_parameters_are_a_400_with_a_code(market, query, code, field):
    response = APIClient().get("/api/v1/markets/BTC-USD/candles/", query)
    assert response.status_code == 400, response.json()
    assert (response.json()["code"], response.json()["field"]) == (code, field)


def test_a_crafted_cursor_position_is_refused(market):
    import base64

    cursor = base64.b64encode(b"o=0&r=0&p=not-a-time").decode()
    response = APIClient().get("/api/v1/markets/BTC-USD/candles/", {"granularity": 60, "cursor": cursor})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_cursor")


def test_an_unknown_market_is_a_404(market):
    assert APIClient().get("/api/v1/markets/NOPE/candles/", {"granularity": 60}).status_code == 404


# --- equal to a recomputation from the fills ---------------------------------------------------------------------


def recomputed(market) -> dict[tuple[int, datetime], tuple]:
    """The candles from scratch, by plain arithmetic on the fill rows (not ``trading.candles``)."""
    buckets = defaultdict(list)
    for fill in Fill.objects.filter(market=market).order_by("id"):
        seconds = int((fill.created_at - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() // 1)
        for g in GRANULARITIES:
            buckets[(g, datetime.fromtimestamp(seconds - seconds % g, tz=UTC))].append(fill)
    return {key: (fills[0].price, max(f.price for f in fills), min(f.price for f in fills), fills[-1].price,
                  sum(f.size for f in fills), sum(f.quote_amount for f in fills), len(fills))
            for key, fills in buckets.items()}


def stored(market) -> dict[tuple[int, datetime], tuple]:
    return {(c.granularity, c.start): (c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trade_count)
            for c in Candle.objects.filter(market=market)}


def test_the_worked_example_equals_its_recomputation(worked_example):
    assert stored(worked_example) == recomputed(worked_example)


step = st.tuples(
    st.integers(0, 4000),  # seconds after the previous batch (crosses minutes, 5- and 15-minute buckets, hours)
    st.sampled_from(["buy", "sell"]),
    st.integers(-3, 3),  # price offset in ticks of 1.00 from 100
    st.integers(1, 30),  # size in lots of 0.01
    st.booleans(),  # whether the next order joins this batch
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=25), start_offset=st.integers(0, 86399))
def test_any_run_of_batches_rolls_up_to_its_recomputation(traders, monkeypatch, steps, start_offset):
    alice, bob = traders
    market = MarketFactory(symbol=f"P{next(_symbols)}-USD", tick_size=D("1"), lot_size=D("0.01"), min_size=D("0.01"))
    now = T0 + timedelta(seconds=start_offset, microseconds=start_offset * 7 % 1000000)
    monkeypatch.setattr(trading_clock, "now", lambda: now)
    accounts = itertools.cycle([alice, bob])
    for seconds, side, ticks, lots, joins in steps:
        place(next(accounts), market, side, size=str(D(lots) / 100), price=str(100 + ticks))
        if not joins:
            now += timedelta(seconds=seconds)
            match(market)
    match(market)
    assert stored(market) == recomputed(market)
    # And the SQL rebuild of the backfill agrees, day by day.
    rollup = stored(market)
    day = bucket_start(T0, 86400)
    with transaction.atomic():
        for offset in range(3):
            sql.candles_rebuild_postgresql(market.pk, day + timedelta(days=offset), day + timedelta(days=offset + 1))
        assert stored(market) == rollup
        transaction.set_rollback(True)


# --- one transaction with the fills ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_rollup_is_written_by_the_transaction_that_writes_the_fills(traders):
    """Here every statement commits, and the matcher runs (eagerly) after the placing transaction commits."""
    alice, bob = traders
    market = MarketFactory()
    place(bob, market, "sell", size="0.5", price="20000.00")
    with transaction.atomic():  # two orders, so one batch of two fills
        place(alice, market, "buy", size="0.2", price="20000.00")
        place(alice, market, "buy", size="0.1", price="20000.00")
    match(market)  # nothing left: the wake-up after commit matched them
    assert Fill.objects.filter(market=market).count() == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT xmin::text FROM trading_fill WHERE market_id = %s", [market.pk])
        fill_transactions = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT DISTINCT xmin::text FROM trading_candle WHERE market_id = %s", [market.pk])
        candle_transactions = {row[0] for row in cursor.fetchall()}
    # xmin: the transaction that wrote the row's version. One for the fills, the same for every candle.
    assert len(fill_transactions) == 1 and candle_transactions == fill_transactions
    assert list(Candle.objects.filter(market=market).values_list("trade_count", flat=True)) == [2] * 6


def test_a_batch_that_fails_after_its_fills_leaves_neither_fills_nor_candles(traders, monkeypatch):
    alice, bob = traders
    market = MarketFactory()
    place(bob, market, "sell", size="0.5", price="20000.00")
    match(market)
    place(alice, market, "buy", size="0.2", price="20000.00")

    def crash(*args, **kwargs):
        assert Candle.objects.filter(market=market).exists()  # written, not yet committed
        raise RuntimeError("worker died after the rollup")

    monkeypatch.setattr(outbox, "batch_settled", crash)
    with pytest.raises(RuntimeError):
        match(market)
    assert not Fill.objects.filter(market=market).exists() and not Candle.objects.filter(market=market).exists()
    monkeypatch.undo()
    match(market)  # the redo rolls it up once
    assert [c[1:] for c in candles(market, 60)] == [(D("20000"),) * 4 + (D("0.2"), D("4000"), 1)]


# --- backfill -----------------------------------------------------------------------------------------------------


def test_backfill_rebuilds_what_the_rollup_wrote_and_is_idempotent(worked_example):
    rollup = stored(worked_example)
    Candle.objects.filter(market=worked_example).delete()
    Candle.objects.create(market=worked_example, granularity=60, start=at(9, 0), open=1, high=1, low=1, close=1,
                          volume=1, quote_volume=1, trade_count=1, first_fill_id=0, last_fill_id=0)  # a stray
    call_command("candles_backfill", "--market", "BTC-USD")
    assert stored(worked_example) == rollup
    call_command("candles_backfill")
    assert stored(worked_example) == rollup


def test_backfill_of_a_range_leaves_other_days_alone(worked_example):
    Candle.objects.filter(market=worked_example).delete()
    call_command("candles_backfill", "--since", "2026-11-27", "--until", "2026-11-28")
    assert not Candle.objects.filter(market=worked_example).exists()
    call_command("candles_backfill", "--since", "2026-11-26", "--until", "2026-11-26")
    assert stored(worked_example) == recomputed(worked_example)


def test_backfill_refuses_an_unknown_market(market):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="NOPE"):
        call_command("candles_backfill", "--market", "NOPE")


def test_the_sql_rebuild_and_its_portable_twin_agree(worked_example):
    results = []
    for rebuild in (sql.candles_rebuild_postgresql, sql.candles_rebuild_portable):
        with transaction.atomic():
            Candle.objects.all().delete()
            written = rebuild(worked_example.pk, at(0, 0), at(0, 0) + timedelta(days=1))
            results.append((written, stored(worked_example)))
            transaction.set_rollback(True)
    assert results[0] == results[1] and results[0][0] == 18


def test_the_upsert_and_its_portable_twin_merge_alike(market):
    def part(n, price, start=T0):
        return CandleRow(60, start, D(price), D(price), D(price), D(price), D("1"), D(price), 1, n, n)

    results = []
    for upsert in (sql.candles_upsert_postgresql, sql.candles_upsert_portable):
        with transaction.atomic():
            upsert(market.pk, [part(5, "10"), part(6, "11", T0 + timedelta(minutes=1))])
            upsert(market.pk, [part(7, "12")])
            upsert(market.pk, [part(3, "9")])  # an earlier fill last: the merge does not depend on the order
            results.append(stored(market))
            transaction.set_rollback(True)
    assert results[0] == results[1] == {
        (60, T0): (D("9"), D("12"), D("9"), D("12"), D("3"), D("31"), 3),
        (60, T0 + timedelta(minutes=1)): (D("11"), D("11"), D("11"), D("11"), D("1"), D("11"), 1),
    }


# --- the ticker's 24 hours ---------------------------------------------------------------------------------------


def test_the_ticker_covers_exactly_the_last_24_hours(worked_example, monkeypatch):
    client = APIClient()
    monkeypatch.setattr(trading_clock, "now", lambda: at(12, 4, 59, 999999) + timedelta(hours=24))
    ticker = client.get("/api/v1/markets/BTC-USD/ticker/").json()
    # 24 h back is 12:04:59.999999 on the 26th: the fill of that instant is in, the ones before are out.
    assert {k: ticker[k] for k in ("open_24h", "high_24h", "low_24h", "volume_24h", "quote_volume_24h",
                                   "trades_24h", "last_price")} == {
        "open_24h": "19990.00", "high_24h": "20100.00", "low_24h": "19990.00", "volume_24h": "0.35000000",
        "quote_volume_24h": "7008.25", "trades_24h": 3, "last_price": "20100.00"}
    monkeypatch.setattr(trading_clock, "now", lambda: at(12, 5, 0, 1) + timedelta(hours=24))
    ticker = client.get("/api/v1/markets/BTC-USD/ticker/").json()
    assert (ticker["open_24h"], ticker["trades_24h"]) == ("20100.00", 1)
    monkeypatch.setattr(trading_clock, "now", lambda: at(13, 0, 0, 1) + timedelta(hours=24))
    ticker = client.get("/api/v1/markets/BTC-USD/ticker/").json()
    assert (ticker["open_24h"], ticker["high_24h"], ticker["low_24h"], ticker["volume_24h"], ticker["trades_24h"]) == (
        None, None, None, "0.00000000", 0)
    assert ticker["last_price"] == "20100.00"
