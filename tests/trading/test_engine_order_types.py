"""The engine's newer order types on their own (no database): stop and stop-limit orders, good-til-time expiry,
reductions that keep priority, and the self-trade modes ``decrement_and_cancel`` and ``cancel_both``. Worked
examples to the last unit, then a differential property test against a naive reference model."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trading import engine as e

D = Decimal


def book(tick="0.01", lot="0.001", last=None):
    return e.Book(tick_size=D(tick), lot_size=D(lot), last_price=None if last is None else D(last))


def limit(oid, side, price, size, account=None, **kw):
    return e.Incoming(oid, account or oid, side, e.LIMIT, D(price), D(size), **kw)


def stop(oid, side, stop_price, size=None, price=None, funds=None, account=None, **kw):
    kind = e.STOP if price is None else e.STOP_LIMIT
    tif = kw.pop("time_in_force", e.IOC if kind == e.STOP else e.GTC)
    return e.Incoming(oid, account or oid, side, kind, None if price is None else D(price),
                      None if size is None else D(size), None if funds is None else D(funds), tif,
                      stop_price=D(stop_price), **kw)


def trades(outcome):
    return [(m.maker_id, m.taker_id, m.price, m.size) for m in outcome.matches]


# --- self-trade prevention: decrement_and_cancel --------------------------------------------------------------


def test_dc_cancels_the_smaller_resting_order_and_decrements_the_incoming_one():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1.000", account=7))
    out = b.submit(limit(2, e.BUY, "100", "3.000", account=7, stp=e.DECREMENT_AND_CANCEL))
    assert out.maker_cancels == [e.MakerCancel(1, e.SELF_TRADE, D("1.000"))]
    assert (out.status, out.decremented, out.rested, out.filled) == (e.OPEN, D(1), D(2), D(0))
    assert b.depth() == {"bids": [(D(100), D(2))], "asks": []}


def test_dc_decrements_the_larger_resting_order_and_cancels_the_incoming_one():
    b = book()
    b.submit(limit(1, e.SELL, "100", "5.000", account=7))
    out = b.submit(limit(2, e.BUY, "100", "2.000", account=7, stp=e.DECREMENT_AND_CANCEL))
    assert out.maker_decrements == [e.MakerDecrement(1, D(2))] and out.maker_cancels == []
    assert (out.status, out.reason, out.decremented) == (e.CANCELLED, e.SELF_TRADE, D(2))
    assert b.depth()["asks"] == [(D(100), D(3))] and b.orders[1].remaining == D(3)


def test_dc_cancels_both_when_equal():
    b = book()
    b.submit(limit(1, e.SELL, "100", "2.000", account=7))
    out = b.submit(limit(2, e.BUY, "100", "2.000", account=7, stp=e.DECREMENT_AND_CANCEL))
    assert out.maker_cancels == [e.MakerCancel(1, e.SELF_TRADE, D(2))]
    assert (out.status, out.reason, out.decremented) == (e.CANCELLED, e.SELF_TRADE, D(2))
    assert b.orders == {}


def test_dc_trades_with_others_first_then_decrements_and_rests_the_rest():
    b = book()
    b.submit(limit(1, e.SELL, "100.00", "1.000", account=8))
    b.submit(limit(2, e.SELL, "100.50", "0.400", account=7))
    b.submit(limit(3, e.SELL, "101.00", "1.000", account=9))
    out = b.submit(limit(4, e.BUY, "100.50", "2.500", account=7, stp=e.DECREMENT_AND_CANCEL))
    assert trades(out) == [(1, 4, D("100.00"), D("1.000"))]
    assert out.maker_cancels == [e.MakerCancel(2, e.SELF_TRADE, D("0.400"))]
    # 2.500 - 1.000 filled - 0.400 decremented = 1.100 rests at 100.50.
    assert (out.status, out.filled, out.decremented, out.rested) == (e.PARTIALLY_FILLED, D(1), D("0.4"), D("1.1"))
    assert b.depth() == {"bids": [(D("100.50"), D("1.100"))], "asks": [(D("101.00"), D("1.000"))]}


def test_dc_market_buy_by_funds_spends_the_cost_of_its_own_order_and_goes_on():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1.000", account=7))
    b.submit(limit(2, e.SELL, "101", "1.000", account=8))
    out = b.submit(e.Incoming(3, 7, e.BUY, e.MARKET, None, None, D("201.00"), e.IOC, stp=e.DECREMENT_AND_CANCEL))
    # 100 of the 201 count as spent on its own order (cancelled); the 101 left buy 1.000 at 101.
    assert out.maker_cancels == [e.MakerCancel(1, e.SELF_TRADE, D(1))]
    assert trades(out) == [(2, 3, D(101), D("1.000"))]
    assert (out.status, out.decremented) == (e.FILLED, D(0))


def test_dc_market_buy_by_funds_that_cannot_cover_its_own_order_decrements_it_and_stops():
    b = book()
    b.submit(limit(1, e.SELL, "100", "2.000", account=7))
    out = b.submit(e.Incoming(3, 7, e.BUY, e.MARKET, None, None, D("50.00"), e.IOC, stp=e.DECREMENT_AND_CANCEL))
    assert out.maker_decrements == [e.MakerDecrement(1, D("0.500"))]
    assert (out.status, out.reason) == (e.CANCELLED, e.SELF_TRADE)
    assert b.orders[1].remaining == D("1.500")


def test_fok_meeting_its_own_order_with_dc_or_cancel_both_is_not_fillable_and_cancels_nothing():
    for mode in (e.DECREMENT_AND_CANCEL, e.CANCEL_BOTH):
        b = book()
        b.submit(limit(1, e.SELL, "100", "1", account=7))
        out = b.submit(limit(2, e.BUY, "100", "1", account=7, time_in_force=e.FOK, stp=mode))
        assert (out.status, out.reason, out.maker_cancels) == (e.CANCELLED, e.FOK_NOT_FILLABLE, [])
        assert 1 in b.orders


# --- self-trade prevention: cancel_both -----------------------------------------------------------------------


def test_cancel_both_cancels_the_resting_and_the_incoming_order_after_earlier_fills():
    b = book()
    b.submit(limit(1, e.SELL, "99.99", "0.250", account=8))
    b.submit(limit(2, e.SELL, "100.00", "3.000", account=7))
    b.submit(limit(3, e.SELL, "100.00", "1.000", account=8))
    out = b.submit(limit(4, e.BUY, "100.00", "2.000", account=7, stp=e.CANCEL_BOTH))
    assert trades(out) == [(1, 4, D("99.99"), D("0.250"))]
    assert out.maker_cancels == [e.MakerCancel(2, e.SELF_TRADE, D(3))]
    assert (out.status, out.reason, out.filled) == (e.CANCELLED, e.SELF_TRADE, D("0.25"))
    assert b.depth()["asks"] == [(D(100), D(1))] and set(b.orders) == {3}


# --- stops ----------------------------------------------------------------------------------------------------


def test_a_stop_waits_without_a_last_price_and_triggers_on_the_first_trade_that_reaches_it():
    b = book()
    out = b.submit(stop(1, e.BUY, "100.00", size="1.000", price="101.00"))
    assert out.status == e.PENDING and 1 in b.stops and b.depth() == {"bids": [], "asks": []}
    b.submit(limit(2, e.SELL, "99.00", "0.100"))
    b.submit(limit(3, e.SELL, "100.50", "0.400"))
    assert b.submit(limit(4, e.BUY, "99.00", "0.100")).status == e.FILLED  # last 99.00: below the stop
    assert 1 in b.stops and b.last_price == D(99)
    out = b.submit(limit(5, e.BUY, "100.00", "0.100"))  # nothing at 100: no trade, no trigger
    assert out.status == e.OPEN and 1 in b.stops
    out = b.submit(limit(6, e.SELL, "100.00", "0.100"))  # trades with 5 at 100.00: the stop triggers
    [triggered] = out.cascade
    assert trades(out) == [(5, 6, D(100), D("0.1"))] and triggered.triggered
    # Now a buy limit at 101.00: it takes the ask at 100.50 and rests the rest.
    assert trades(triggered) == [(3, 1, D("100.50"), D("0.400"))]
    assert (triggered.status, triggered.rested) == (e.PARTIALLY_FILLED, D("0.6"))
    assert b.last_price == D("100.50") and b.stops == {} and b.depth()["bids"][0] == (D(101), D("0.6"))


def test_stops_one_trade_reaches_trigger_nearest_first_then_by_id_and_meet_the_book_in_that_order():
    b = book(last="100.00")
    b.submit(stop(10, e.BUY, "102.00", size="1.000"))
    b.submit(stop(11, e.BUY, "101.00", size="1.000"))
    b.submit(stop(12, e.BUY, "101.00", size="1.000"))
    b.submit(stop(13, e.BUY, "103.00", size="1.000"))  # not reached by 102
    for oid, price in ((20, "102.00"), (21, "104.00"), (22, "104.00"), (23, "105.00")):
        b.submit(limit(oid, e.SELL, price, "1.000"))
    out = b.submit(limit(30, e.BUY, "102.00", "1.000"))
    assert trades(out) == [(20, 30, D(102), D(1))]
    assert [(o.order_id, o.triggered) for o in out.cascade] == [(11, True), (12, True), (10, True), (13, True)]
    # 11 and 12 take the two asks at 104 (the last price 104 reaches 13's stop at 103, which queues behind 10);
    # 10 finds 105; 13 finds nothing left.
    assert [trades(o) for o in out.cascade] == [
        [(21, 11, D(104), D(1))], [(22, 12, D(104), D(1))], [(23, 10, D(105), D(1))], []]
    assert [(o.status, o.reason) for o in out.cascade][-1] == (e.CANCELLED, e.NO_LIQUIDITY)
    assert b.stops == {} and b.last_price == D(105)


def test_a_sell_stop_market_triggers_at_or_below_its_stop_and_walks_the_book():
    b = book(last="100.00")
    b.submit(stop(1, e.SELL, "99.50", size="1.500"))
    b.submit(limit(2, e.BUY, "99.60", "0.500"))
    b.submit(limit(3, e.BUY, "99.50", "0.200"))
    b.submit(limit(4, e.BUY, "99.00", "2.000"))
    out = b.submit(limit(5, e.SELL, "99.60", "0.500"))  # last 99.60: above the stop
    assert out.cascade == [] and 1 in b.stops
    out = b.submit(limit(6, e.SELL, "99.50", "0.100"))  # last 99.50: at the stop
    [triggered] = out.cascade
    assert trades(triggered) == [(3, 1, D("99.50"), D("0.100")), (4, 1, D("99.00"), D("1.400"))]
    assert (triggered.status, triggered.filled) == (e.FILLED, D("1.5"))
    assert b.depth()["bids"] == [(D(99), D("0.600"))]


def test_a_stop_whose_price_was_already_reached_triggers_at_once():
    b = book(last="100.00")
    b.submit(limit(1, e.SELL, "100.10", "1.000"))
    out = b.submit(stop(2, e.BUY, "99.00", size="0.300", price="100.10"))
    assert out.triggered and out.status == e.FILLED and trades(out) == [(1, 2, D("100.10"), D("0.300"))]


def test_a_triggered_stop_limit_rests_its_remainder_and_a_triggered_stop_cascades():
    b = book(last="100.80")
    b.submit(stop(1, e.BUY, "101.00", size="2.000", price="101.00"))
    b.submit(stop(2, e.SELL, "100.50", size="0.500", account=9))  # stop-market sell, reached by 100.50 later
    b.submit(limit(3, e.SELL, "101.00", "1.000"))
    b.submit(limit(4, e.BUY, "100.50", "0.500"))
    out = b.submit(limit(5, e.BUY, "101.00", "0.200"))  # trades at 101.00: 1 triggers
    [stop_limit] = out.cascade
    assert trades(stop_limit) == [(3, 1, D(101), D("0.800"))]
    assert (stop_limit.status, stop_limit.rested) == (e.PARTIALLY_FILLED, D("1.2"))
    # 2 is a sell stop at 100.50: the last price is 101.00, above it; a sell at 100.50 reaches it.
    out = b.submit(limit(6, e.SELL, "100.50", "0.100"))  # meets bid 1 at 101.00 first
    assert trades(out) == [(1, 6, D(101), D("0.100"))] and 2 in b.stops
    b.submit(limit(7, e.SELL, "101.00", "1.100"))  # fills the rest of 1
    out = b.submit(limit(8, e.SELL, "100.50", "0.100"))  # trades with 4 at 100.50: triggers 2
    [sell_stop] = out.cascade
    assert trades(sell_stop) == [(4, 2, D("100.50"), D("0.400"))]
    assert (sell_stop.status, sell_stop.reason) == (e.CANCELLED, e.NO_LIQUIDITY)


def test_a_removed_stop_never_triggers():
    b = book(last="100")
    b.submit(stop(1, e.BUY, "101", size="1"))
    assert isinstance(b.remove(1), e.Incoming)
    b.submit(limit(2, e.SELL, "101", "1"))
    assert b.submit(limit(3, e.BUY, "101", "1")).cascade == []


# --- good-til-time --------------------------------------------------------------------------------------------


def test_a_gtt_order_rests_until_its_time_and_expires_at_exactly_that_time():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1.000", time_in_force=e.GTT, expire_at=1000))
    b.submit(limit(2, e.BUY, "100", "0.250"))
    assert b.next_expiry() == 1000
    assert b.expire(999) == [] and b.orders[1].remaining == D("0.750")
    assert b.expire(1000) == [e.Expired(1, D("0.750"))]
    assert b.orders == {} and b.next_expiry() is None


def test_a_gtt_order_that_arrives_after_its_time_expires_unmatched():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1"))
    out = b.submit(limit(2, e.BUY, "100", "1", time_in_force=e.GTT, expire_at=50), now=50)
    assert (out.status, out.reason, out.matches) == (e.EXPIRED, e.EXPIRED_REASON, [])
    assert b.submit(limit(3, e.BUY, "100", "1", time_in_force=e.GTT, expire_at=50), now=49).status == e.FILLED


def test_expiry_skips_orders_gone_already_and_takes_waiting_stops():
    b = book(last="100")
    b.submit(limit(1, e.SELL, "100", "1", time_in_force=e.GTT, expire_at=10))
    b.submit(stop(2, e.BUY, "105", size="1", price="105", time_in_force=e.GTT, expire_at=20))
    b.submit(limit(3, e.BUY, "100", "1"))  # fills 1
    assert b.expire(30) == [e.Expired(2, D(1))] and b.stops == {}


# --- reductions keep priority ---------------------------------------------------------------------------------


def test_a_reduced_order_keeps_its_place_in_the_queue():
    b = book()
    b.submit(limit(1, e.SELL, "100", "2.000"))
    b.submit(limit(2, e.SELL, "100", "2.000"))
    b.reduce(1, D("0.500"))
    out = b.submit(limit(3, e.BUY, "100", "1.000"))
    assert trades(out) == [(1, 3, D(100), D("0.5")), (2, 3, D(100), D("0.5"))]


# --- differential property test against a naive reference model ----------------------------------------------


class Reference:
    """The same rules, written the slow obvious way: lists scanned and sorted on every step."""

    def __init__(self, last=None):
        self.resting: list[dict] = []  # id, account, side, price, remaining, expire, priority
        self.stops: list[dict] = []
        self.last = last
        self.anchor, self.fired = 0, 0

    def best(self, side):
        opposite = [r for r in self.resting if r["side"] != side]
        opposite.sort(key=lambda r: (r["price"] if side == e.BUY else -r["price"], r["priority"]))
        return opposite[0] if opposite else None

    def crosses(self, o, price):
        return o["price"] is None or (price <= o["price"] if o["side"] == e.BUY else price >= o["price"])

    def expire(self, now):
        gone = sorted((r for r in self.resting + self.stops if r["expire"] is not None and r["expire"] <= now),
                      key=lambda r: (r["expire"], r["id"]))
        ids = {r["id"] for r in gone}
        self.resting = [r for r in self.resting if r["id"] not in ids]
        self.stops = [r for r in self.stops if r["id"] not in ids]
        return [(r["id"], r["remaining"]) for r in gone]

    def submit(self, o, now):
        # A resting order's time priority: its arrival; a triggered stop's: its trigger, just after the order
        # whose trade triggered it, in trigger order.
        o = {**o, "priority": (o["id"], 0)}
        self.anchor, self.fired = o["id"], 0
        if o["expire"] is not None and o["expire"] <= now:
            return [(o["id"], e.EXPIRED, e.EXPIRED_REASON, [], [], [], D(0), False)]
        queue, results = [], []
        if o["type"] in e.STOP_TYPES:
            if not self.reached(o, self.last):
                self.stops.append({**o, "remaining": o["size"]})
                return [(o["id"], e.PENDING, "", [], [], [], D(0), False)]
            queue.append((o, True))
        else:
            queue.append((o, False))
        while queue:
            order, triggered = queue.pop(0)
            if order["type"] in e.STOP_TYPES:
                order = {**order, "type": e.MARKET if order["type"] == e.STOP else e.LIMIT,
                         "tif": e.IOC if order["type"] == e.STOP else order["tif"]}
            result, fired = self.execute(order)
            results.append((*result, triggered))
            queue.extend((f, True) for f in fired)
        return results

    def reached(self, s, price):
        return price is not None and (price >= s["stop"] if s["side"] == e.BUY else price <= s["stop"])

    def fire(self, price):
        self.last = price
        buys = sorted((s for s in self.stops if s["side"] == e.BUY and self.reached(s, price)),
                      key=lambda s: (s["stop"], s["id"]))
        sells = sorted((s for s in self.stops if s["side"] == e.SELL and self.reached(s, price)),
                       key=lambda s: (-s["stop"], s["id"]))
        ids = {s["id"] for s in buys + sells}
        self.stops = [s for s in self.stops if s["id"] not in ids]
        out = []
        for s in buys + sells:
            self.fired += 1
            out.append({**s, "priority": (self.anchor, self.fired)})
        return out

    def fillable(self, o):
        wanted = o["size"]
        opposite = sorted((r for r in self.resting if r["side"] != o["side"]),
                          key=lambda r: (r["price"] if o["side"] == e.BUY else -r["price"], r["priority"]))
        for r in opposite:
            if not self.crosses(o, r["price"]):
                return False
            if r["account"] == o["account"]:
                if o["stp"] == e.CANCEL_OLDEST:
                    continue
                return False
            wanted -= min(wanted, r["remaining"])
            if wanted == 0:
                return True
        return False

    def execute(self, o):
        matches, cancels, decs, decremented, fired = [], [], [], D(0), []
        if o["post_only"]:
            best = self.best(o["side"])
            if best is not None and self.crosses(o, best["price"]):
                return (o["id"], e.REJECTED, e.POST_ONLY_WOULD_CROSS, [], [], [], D(0)), []
            self.resting.append({**o, "remaining": o["size"]})
            return (o["id"], e.OPEN, "", [], [], [], D(0)), []
        if o["tif"] == e.FOK and not self.fillable(o):
            return (o["id"], e.CANCELLED, e.FOK_NOT_FILLABLE, [], [], [], D(0)), []
        remaining, self_trade = o["size"], False
        while remaining > 0:
            maker = self.best(o["side"])
            if maker is None or not self.crosses(o, maker["price"]):
                break
            if maker["account"] == o["account"]:
                if o["stp"] in (e.CANCEL_OLDEST, e.CANCEL_BOTH):
                    self.resting.remove(maker)
                    cancels.append((maker["id"], maker["remaining"]))
                    if o["stp"] == e.CANCEL_OLDEST:
                        continue
                elif o["stp"] == e.DECREMENT_AND_CANCEL:
                    smaller = min(maker["remaining"], remaining)
                    remaining -= smaller
                    decremented += smaller
                    if smaller == maker["remaining"]:
                        self.resting.remove(maker)
                        cancels.append((maker["id"], maker["remaining"]))
                        if remaining > 0:
                            continue
                    else:
                        maker["remaining"] -= smaller
                        decs.append((maker["id"], smaller))
                self_trade = True
                break
            qty = min(remaining, maker["remaining"])
            matches.append((maker["id"], o["id"], maker["price"], qty))
            maker["remaining"] -= qty
            remaining -= qty
            if maker["remaining"] == 0:
                self.resting.remove(maker)
            fired.extend(self.fire(maker["price"]))
        filled = sum((m[3] for m in matches), D(0))
        if remaining == 0 and not self_trade:
            status, reason = e.FILLED, ""
        elif o["type"] == e.LIMIT and o["tif"] in e.RESTS and not self_trade:
            self.resting.append({**o, "remaining": remaining})
            status, reason = (e.PARTIALLY_FILLED if filled else e.OPEN), ""
        else:
            status = e.CANCELLED
            reason = e.SELF_TRADE if self_trade else (e.NO_LIQUIDITY if o["type"] == e.MARKET else e.IOC_REMAINDER)
        return (o["id"], status, reason, matches, cancels, decs, decremented), fired

    def depth(self):
        out = {}
        for side in (e.BUY, e.SELL):
            levels = {}
            for r in self.resting:
                if r["side"] == side:
                    levels[r["price"]] = levels.get(r["price"], D(0)) + r["remaining"]
            out[side] = sorted(levels.items(), reverse=side == e.BUY)
        return out


step = st.tuples(
    st.sampled_from([e.BUY, e.SELL]),
    st.sampled_from([e.LIMIT, e.LIMIT, e.MARKET, e.STOP, e.STOP_LIMIT]),
    st.integers(min_value=97, max_value=103).map(D),  # price
    st.integers(min_value=97, max_value=103).map(D),  # stop price
    st.integers(min_value=1, max_value=5).map(D),  # size
    st.sampled_from([e.GTC, e.GTC, e.IOC, e.FOK, e.GTT]),
    st.integers(min_value=1, max_value=3),  # account
    st.sampled_from([e.CANCEL_NEWEST, e.CANCEL_OLDEST, e.DECREMENT_AND_CANCEL, e.CANCEL_BOTH]),
    st.booleans(),  # post only
    st.integers(min_value=0, max_value=12),  # 0: cancel a resting order or stop, 1: reduce one, 2: advance the clock
)


@settings(max_examples=400, deadline=None)
@given(st.lists(step, max_size=50), st.sampled_from([None, D(100)]))
def test_the_engine_agrees_with_the_reference_model(flow, last):
    b, ref, now = book("1", "1", last), Reference(last), 0
    for oid, (side, kind, price, stop_price, size, tif, account, stp, post_only, action) in enumerate(flow, 1):
        live = sorted(set(b.orders) | set(b.stops))
        if action == 0 and live:
            victim = live[oid % len(live)]
            b.remove(victim)
            ref.resting = [r for r in ref.resting if r["id"] != victim]
            ref.stops = [s for s in ref.stops if s["id"] != victim]
            continue
        if action == 1 and b.orders:
            victim = sorted(b.orders)[oid % len(b.orders)]
            if b.orders[victim].remaining > 1:
                b.reduce(victim, b.orders[victim].remaining - 1)
                next(r for r in ref.resting if r["id"] == victim)["remaining"] -= 1
            continue
        if action == 2:
            now += 5
            assert [(x.order_id, x.remaining) for x in b.expire(now)] == ref.expire(now)
            continue
        if kind == e.STOP and tif not in (e.IOC, e.FOK):
            tif = e.IOC
        if kind == e.MARKET and tif != e.FOK:
            tif = e.IOC
        post_only = post_only and kind == e.LIMIT and tif == e.GTC
        expire = now + 10 * (oid % 3) if tif == e.GTT else None  # some arrive already expired
        has_price = kind in (e.LIMIT, e.STOP_LIMIT)
        incoming = e.Incoming(oid, account, side, kind, price if has_price else None, size, time_in_force=tif,
                              post_only=post_only, stp=stp, stop_price=stop_price if kind in e.STOP_TYPES else None,
                              expire_at=expire)
        out = b.submit(incoming, now=now)
        got = [(o.order_id, o.status, o.reason, trades(o), [(c.order_id, c.remaining) for c in o.maker_cancels],
                [(d.order_id, d.size) for d in o.maker_decrements], o.decremented, o.triggered) for o in out.all()]
        expected = ref.submit({"id": oid, "account": account, "side": side, "type": kind,
                               "price": price if has_price else None, "size": size, "tif": tif,
                               "post_only": post_only, "stp": stp, "stop": stop_price, "expire": expire}, now)
        assert got == expected
        assert b.depth(100) == {"bids": ref.depth()[e.BUY], "asks": ref.depth()[e.SELL]}
        assert set(b.stops) == {s["id"] for s in ref.stops} and b.last_price == ref.last


def test_a_triggered_stop_limit_rests_behind_orders_that_were_on_the_book_when_it_triggered():
    b = book(last="100")
    b.submit(stop(1, e.BUY, "101", size="1", price="102"))  # older than everything below
    b.submit(limit(2, e.BUY, "102", "1"))  # rests at 102 before the stop triggers
    out = b.submit(limit(3, e.SELL, "102", "0.5"))  # trades with 2 at 102: triggers 1, which rests at 102
    assert [o.order_id for o in out.cascade] == [1] and out.cascade[0].status == e.OPEN
    # By id, 1 would go ahead of 2; it triggered after 2 rested, so it queues behind it.
    assert [o.id for o in b.bids.levels[D(102)]] == [2, 1]
    assert out.cascade[0].priority == b.orders[1].priority == e.priority_of(3) + 1
    b.submit(limit(4, e.BUY, "102", "1"))
    assert [o.id for o in b.bids.levels[D(102)]] == [2, 1, 4]
