"""The matching engine on its own: no database, plain objects."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading import engine as e

D = Decimal


def book():
    return e.Book(lot_size=D("0.001"))


def limit(oid, side, price, size, account=None, **kw):
    return e.Incoming(oid, account or oid, side, e.LIMIT, D(price), D(size), **kw)


def market(oid, side, size=None, funds=None, account=None, **kw):
    return e.Incoming(oid, account or oid, side, e.MARKET, None, None if size is None else D(size),
                      None if funds is None else D(funds), time_in_force=kw.pop("time_in_force", e.IOC), **kw)


def trades(outcome):
    return [(m.maker_id, m.price, m.size) for m in outcome.matches]


def test_gtc_limit_rests_when_nothing_crosses():
    b = book()
    out = b.submit(limit(1, e.BUY, "100", "2"))
    assert (out.status, out.rested, out.matches) == (e.OPEN, D(2), [])
    assert b.best_bid() == D(100) and b.best_ask() is None


def test_price_then_time_priority_and_maker_price():
    b = book()
    b.submit(limit(1, e.SELL, "101", "1"))
    b.submit(limit(2, e.SELL, "100", "1"))
    b.submit(limit(3, e.SELL, "100", "1"))
    out = b.submit(limit(4, e.BUY, "101", "2.5"))
    assert trades(out) == [(2, D(100), D(1)), (3, D(100), D(1)), (1, D(101), D("0.5"))]
    assert out.status == e.FILLED and out.filled == D("2.5")
    assert b.depth() == {"bids": [], "asks": [(D(101), D("0.5"))]}


def test_partial_fill_rests_the_remainder_for_gtc():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1"))
    out = b.submit(limit(2, e.BUY, "100", "3"))
    assert (out.status, out.filled, out.rested) == (e.PARTIALLY_FILLED, D(1), D(2))
    assert b.depth()["bids"] == [(D(100), D(2))]


def test_ioc_cancels_the_remainder():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1"))
    out = b.submit(limit(2, e.BUY, "100", "3", time_in_force=e.IOC))
    assert (out.status, out.reason, out.filled) == (e.CANCELLED, e.IOC_REMAINDER, D(1))
    assert b.best_bid() is None and b.best_ask() is None


def test_fok_fills_fully_or_does_nothing():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1"))
    b.submit(limit(2, e.SELL, "102", "1"))
    killed = b.submit(limit(3, e.BUY, "101", "1.5", time_in_force=e.FOK))
    assert (killed.status, killed.reason, killed.matches) == (e.CANCELLED, e.FOK_NOT_FILLABLE, [])
    assert b.depth()["asks"] == [(D(100), D(1)), (D(102), D(1))]
    filled = b.submit(limit(4, e.BUY, "102", "1.5", time_in_force=e.FOK))
    assert filled.status == e.FILLED and trades(filled) == [(1, D(100), D(1)), (2, D(102), D("0.5"))]


def test_post_only_is_rejected_if_it_would_cross_and_rests_otherwise():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1"))
    rejected = b.submit(limit(2, e.BUY, "100", "1", post_only=True))
    assert (rejected.status, rejected.reason) == (e.REJECTED, e.POST_ONLY_WOULD_CROSS)
    rested = b.submit(limit(3, e.BUY, "99.99", "1", post_only=True))
    assert rested.status == e.OPEN and b.best_bid() == D("99.99")


def test_market_sell_walks_the_book_and_cancels_what_finds_no_liquidity():
    b = book()
    b.submit(limit(1, e.BUY, "100", "1"))
    b.submit(limit(2, e.BUY, "90", "1"))
    out = b.submit(market(3, e.SELL, size="3"))
    assert trades(out) == [(1, D(100), D(1)), (2, D(90), D(1))]
    assert (out.status, out.reason, out.filled) == (e.CANCELLED, e.NO_LIQUIDITY, D(2))


def test_market_buy_by_funds_spends_at_most_the_funds_including_fee():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1"))
    b.submit(limit(2, e.SELL, "200", "5"))
    # 1 @ 100 costs 100.2 with a 0.2% fee; 49.8 remain and buy 0.248 @ 200 (49.6992), not 0.249 (49.8996).
    out = b.submit(market(3, e.BUY, funds="150", fee_rate=D("0.002")))
    assert trades(out) == [(1, D(100), D(1)), (2, D(200), D("0.248"))]
    assert (out.status, out.reason) == (e.FILLED, "")


def test_market_buy_by_funds_without_liquidity_is_cancelled():
    out = book().submit(market(1, e.BUY, funds="10"))
    assert (out.status, out.reason, out.filled) == (e.CANCELLED, e.NO_LIQUIDITY, D(0))


def test_market_buy_by_size_with_a_funds_cap_stops_at_the_cap():
    b = book()
    b.submit(limit(1, e.SELL, "100", "5"))
    out = b.submit(market(2, e.BUY, size="5", funds="250"))
    assert trades(out) == [(1, D(100), D("2.5"))]
    assert (out.status, out.reason) == (e.CANCELLED, e.FUNDS_EXHAUSTED)


def test_stp_cancel_newest_cancels_the_incoming_order_and_keeps_the_resting_one():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1", account=7))
    b.submit(limit(2, e.SELL, "100", "1", account=8))
    out = b.submit(limit(3, e.BUY, "100", "2", account=7))
    assert (out.status, out.reason, out.matches) == (e.CANCELLED, e.SELF_TRADE, [])
    assert b.depth()["asks"] == [(D(100), D(2))]


def test_stp_cancel_newest_keeps_fills_made_before_the_own_order():
    b = book()
    b.submit(limit(1, e.SELL, "99", "1", account=8))
    b.submit(limit(2, e.SELL, "100", "1", account=7))
    out = b.submit(limit(3, e.BUY, "100", "2", account=7))
    assert trades(out) == [(1, D(99), D(1))]
    assert (out.status, out.reason) == (e.CANCELLED, e.SELF_TRADE)


def test_stp_cancel_oldest_cancels_the_resting_order_and_goes_on():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1", account=7))
    b.submit(limit(2, e.SELL, "100", "1", account=8))
    out = b.submit(limit(3, e.BUY, "100", "2", account=7, stp=e.CANCEL_OLDEST))
    assert out.maker_cancels == [e.MakerCancel(1, e.SELF_TRADE, D(1))]
    assert trades(out) == [(2, D(100), D(1))]
    assert (out.status, out.rested) == (e.PARTIALLY_FILLED, D(1))
    assert b.depth() == {"bids": [(D(100), D(1))], "asks": []}


def test_fok_with_cancel_oldest_skips_own_orders_and_with_cancel_newest_is_killed():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1", account=7))
    b.submit(limit(2, e.SELL, "100", "1", account=8))
    newest = b.submit(limit(3, e.BUY, "100", "1", account=7, time_in_force=e.FOK))
    assert (newest.status, newest.reason) == (e.CANCELLED, e.FOK_NOT_FILLABLE)
    oldest = b.submit(limit(4, e.BUY, "100", "1", account=7, time_in_force=e.FOK, stp=e.CANCEL_OLDEST))
    assert oldest.status == e.FILLED and trades(oldest) == [(2, D(100), D(1))]
    assert [c.order_id for c in oldest.maker_cancels] == [1]


def test_remove_takes_an_order_off_the_book():
    b = book()
    b.submit(limit(1, e.SELL, "100", "1"))
    b.submit(limit(2, e.SELL, "100", "2"))
    b.submit(limit(3, e.SELL, "101", "1"))
    assert b.remove(2).id == 2 and b.remove(2) is None
    assert b.remove(3).id == 3
    assert b.depth()["asks"] == [(D(100), D(1))]


def test_within_a_level_the_older_order_id_has_priority_even_if_it_arrives_later():
    b = book()
    b.add(e.Resting(5, 1, e.SELL, D(100), D(1)))
    b.add(e.Resting(3, 2, e.SELL, D(100), D(1)))
    b.add(e.Resting(4, 3, e.SELL, D(100), D(1)))
    out = b.submit(limit(9, e.BUY, "100", "3"))
    assert [m.maker_id for m in out.matches] == [3, 4, 5]


def test_funds_order_cannot_be_fill_or_kill():
    with pytest.raises(ValueError):
        book().submit(market(1, e.BUY, funds="10", time_in_force=e.FOK))


# --- properties ---------------------------------------------------------------------------------------------

prices = st.integers(min_value=95, max_value=105).map(D)
sizes = st.integers(min_value=1, max_value=5000).map(lambda n: D(n) * D("0.001"))
orders = st.lists(
    st.tuples(
        st.sampled_from([e.BUY, e.SELL]),
        st.sampled_from([e.LIMIT, e.LIMIT, e.LIMIT, e.MARKET]),
        prices,
        sizes,
        st.sampled_from([e.GTC, e.GTC, e.IOC, e.FOK]),
        st.integers(min_value=1, max_value=4),  # account
        st.sampled_from([e.CANCEL_NEWEST, e.CANCEL_OLDEST]),
        st.booleans(),  # post only (limit GTC only)
        st.integers(min_value=0, max_value=9),  # 0: cancel a random resting order instead
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(orders)
def test_invariants_hold_for_any_order_flow(flow):
    b = book()
    original: dict[int, Decimal] = {}
    matched: dict[int, Decimal] = {}
    for oid, (side, kind, price, size, tif, account, stp, post_only, action) in enumerate(flow, start=1):
        if action == 0 and b.orders:
            victim = sorted(b.orders)[oid % len(b.orders)]
            b.remove(victim)
            continue
        incoming = e.Incoming(oid, account, side, kind, price if kind == e.LIMIT else None, size,
                              time_in_force=tif, stp=stp, post_only=post_only and kind == e.LIMIT and tif == e.GTC)
        before = {o.id: (o.price, o.remaining, o.account, o.side) for o in b.orders.values()}
        out = b.submit(incoming)
        original[oid] = size
        _check_outcome(b, incoming, out, before)
        for m in out.matches:
            matched[m.maker_id] = matched.get(m.maker_id, D(0)) + m.size
            matched[m.taker_id] = matched.get(m.taker_id, D(0)) + m.size
        _check_not_crossed(b)
    for oid, total in matched.items():
        assert total <= original[oid], "an order traded more than its size"
    for o in b.orders.values():
        assert o.remaining + matched.get(o.id, D(0)) == original[o.id], "resting size is not conserved"


def _check_not_crossed(b):
    bid, ask = b.best_bid(), b.best_ask()
    assert bid is None or ask is None or bid < ask


def _check_outcome(b, incoming, out, before):
    # Size is conserved: filled + rested + (cancelled remainder) == size.
    assert out.filled == sum((m.size for m in out.matches), D(0))
    assert out.filled + out.rested <= incoming.size
    if out.status == e.FILLED:
        assert out.filled == incoming.size
    if out.status in (e.OPEN, e.PARTIALLY_FILLED):
        assert out.filled + out.rested == incoming.size and b.orders[incoming.id].remaining == out.rested
    if incoming.time_in_force == e.FOK:
        assert out.filled in (D(0), incoming.size)
    # No self trade; every price within the limit; price then time priority among makers not self-cancelled.
    cancelled = {c.order_id for c in out.maker_cancels}
    for m in out.matches:
        assert m.maker_account != incoming.account
        assert e.crosses(incoming.side, incoming.price, m.price)
        assert before[m.maker_id][0] == m.price and m.maker_id not in cancelled
    sign = 1 if incoming.side == e.BUY else -1
    keys = [(sign * m.price, m.maker_id) for m in out.matches]
    assert keys == sorted(keys), "matches out of price-time priority"
    if out.matches:
        last = (sign * out.matches[-1].price, out.matches[-1].maker_id)
        skipped = [
            oid for oid, (p, _, account, side) in before.items()
            if side != incoming.side and oid not in cancelled and (sign * p, oid) < last
        ]
        assert set(skipped) <= {m.maker_id for m in out.matches}, "a better or older resting order was skipped"
