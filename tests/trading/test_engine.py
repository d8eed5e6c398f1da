"""The matching engine on its own: no database, plain objects."""

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading import engine as e

D = Decimal


def book(tick="0.01", lot="0.001"):
    return e.Book(tick_size=D(tick), lot_size=D(lot))


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


# --- a market buy by funds stops when its money is spent ---------------------------------------------------
# Tick 1, lot 1: one lot at one tick costs 1 x (1 + fee). Account 1 buys; account 2 is another client.

SPENDS_EXACTLY = pytest.mark.parametrize("funds, fee, size", [
    ("10", "0", "1"),  # 1 @ 10
    ("20.05", "0.0025", "2"),  # 2 @ 10 x 1.0025
])


def unit_book(*asks):
    """A tick 1, lot 1 book of asks given as (price, size, account), ids in the order given."""
    b = book(tick="1", lot="1")
    for oid, (price, size, account) in enumerate(asks, start=1):
        b.add(e.Resting(oid, account, e.SELL, D(price), D(size)))
    return b


def funds_buy(funds, fee="0", **kw):
    return market(100, e.BUY, funds=funds, account=1, fee_rate=D(fee), **kw)


@SPENDS_EXACTLY
@pytest.mark.parametrize("beyond", [[], [("11", "1", 2)]], ids=["book-swept-empty", "ask-left"])
def test_funds_spent_exactly_is_filled_whether_or_not_liquidity_is_left(funds, fee, size, beyond):
    b = unit_book(("10", size, 2), *beyond)
    out = b.submit(funds_buy(funds, fee))
    assert trades(out) == [(1, D(10), D(size))]
    assert (out.status, out.reason) == (e.FILLED, "")


@SPENDS_EXACTLY
def test_funds_spent_exactly_is_not_cancelled_by_its_own_next_order(funds, fee, size):
    b = unit_book(("10", size, 2), ("11", "1", 1))
    out = b.submit(funds_buy(funds, fee, stp=e.CANCEL_NEWEST))
    assert trades(out) == [(1, D(10), D(size))]
    assert (out.status, out.reason, out.maker_cancels) == (e.FILLED, "", [])
    assert b.depth()["asks"] == [(D(11), D(1))]


@SPENDS_EXACTLY
def test_funds_spent_exactly_cancels_no_own_order_with_cancel_oldest(funds, fee, size):
    b = unit_book(("10", size, 2), ("11", "1", 1), ("12", "1", 2))
    out = b.submit(funds_buy(funds, fee, stp=e.CANCEL_OLDEST))
    assert trades(out) == [(1, D(10), D(size))]
    assert (out.status, out.reason, out.maker_cancels) == (e.FILLED, "", [])
    assert b.depth()["asks"] == [(D(11), D(1)), (D(12), D(1))]


@pytest.mark.parametrize("funds, status, reason", [
    ("10.9", e.FILLED, ""),  # 0.9 left buys no lot at any price: done
    ("11", e.CANCELLED, e.NO_LIQUIDITY),  # 1 left would buy a lot at 1: the book ran out, not the money
])
def test_funds_left_below_one_lot_at_one_tick_count_as_spent(funds, status, reason):
    out = unit_book(("10", "1", 2)).submit(funds_buy(funds))
    assert trades(out) == [(1, D(10), D(1))]
    assert (out.status, out.reason) == (status, reason)


@pytest.mark.parametrize("stp", [e.CANCEL_NEWEST, e.CANCEL_OLDEST])
def test_funds_that_cannot_buy_a_lot_at_the_own_order_price_leave_it_alone(stp):
    # 5 left would buy at 5 but not at 11: the own order could not have been matched, so STP does not apply.
    b = unit_book(("10", "1", 2), ("11", "1", 1), ("12", "1", 2))
    out = b.submit(funds_buy("15", stp=stp))
    assert trades(out) == [(1, D(10), D(1))]
    assert (out.status, out.reason, out.maker_cancels) == (e.FILLED, "", [])
    assert b.depth()["asks"] == [(D(11), D(1)), (D(12), D(1))]


def test_funds_that_can_buy_at_the_own_order_price_meet_self_trade_prevention():
    newest = unit_book(("10", "1", 2), ("11", "1", 1), ("12", "1", 2)).submit(funds_buy("21"))
    assert trades(newest) == [(1, D(10), D(1))]
    assert (newest.status, newest.reason) == (e.CANCELLED, e.SELF_TRADE)
    oldest = unit_book(("10", "1", 2), ("11", "1", 1), ("12", "1", 2)).submit(funds_buy("21", stp=e.CANCEL_OLDEST))
    assert oldest.maker_cancels == [e.MakerCancel(2, e.SELF_TRADE, D(1))]
    assert trades(oldest) == [(1, D(10), D(1))]  # 11 left do not buy 1 @ 12
    assert (oldest.status, oldest.reason) == (e.FILLED, "")


def test_funds_that_buy_no_lot_at_any_price_buy_nothing_and_cancel_nothing():
    b = unit_book(("1", "1", 1), ("1", "1", 2))
    out = b.submit(funds_buy("1", fee="0.001", stp=e.CANCEL_OLDEST))
    assert (out.status, out.reason, out.matches, out.maker_cancels) == (e.CANCELLED, e.FUNDS_EXHAUSTED, [], [])
    assert b.depth()["asks"] == [(D(1), D(2))]


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


grids = st.sampled_from([("1", "1"), ("0.01", "0.001"), ("0.5", "0.25")])  # (tick, lot)
asks = st.lists(  # (price in ticks, size in lots, is the buyer's own), ids from 1 in the order given
    st.tuples(st.integers(min_value=1, max_value=30), st.integers(min_value=1, max_value=5),
              st.sampled_from([False, False, True])),
    max_size=8,
)


@st.composite
def funds_orders(draw):
    """A book of asks and a market buy by funds that often spends its funds exactly, or to within a lot."""
    tick, lot = (D(v) for v in draw(grids))
    book_asks = {oid: (price * tick, size * lot, 1 if own else 2)
                 for oid, (price, size, own) in enumerate(draw(asks), start=1)}
    fee = draw(st.sampled_from([D(0), D("0.001"), D("0.0025")]))
    ranked = sorted(book_asks, key=lambda oid: (book_asks[oid][0], oid))
    taken = draw(st.integers(min_value=0, max_value=len(ranked)))
    # What the first asks cost, but the buyer's own (cancel-oldest removes them, cancel-newest stops there).
    cost = sum((book_asks[i][0] * book_asks[i][1] for i in ranked[:taken] if book_asks[i][2] != 1), D(0))
    if taken < len(ranked):
        cost += book_asks[ranked[taken]][0] * lot * draw(st.integers(min_value=0, max_value=3))
    dust = draw(st.sampled_from([D(0), D("0.5"), D("0.999"), D(1), D(3)]))
    funds = cost * (1 + fee) + dust * tick * lot * (1 + fee)
    return tick, lot, book_asks, fee, funds, draw(st.sampled_from([e.CANCEL_NEWEST, e.CANCEL_OLDEST]))


def _funds_buy_on(tick, lot, book_asks, fee, funds, stp):
    b = book(tick, lot)
    for oid, (price, size, account) in book_asks.items():
        b.add(e.Resting(oid, account, e.SELL, price, size))
    return b.submit(e.Incoming(100, 1, e.BUY, e.MARKET, None, None, funds, e.IOC, stp=stp, fee_rate=fee))


@settings(max_examples=400, deadline=None)
@given(funds_orders())
def test_a_funds_order_ends_on_the_liquidity_it_consumed_and_cancels_only_what_it_could_buy(case):
    tick, lot, book_asks, fee, funds, stp = case
    out = _funds_buy_on(*case)
    with localcontext(e.EXACT):
        cost = [m.price * m.size * (1 + fee) for m in out.matches]
        assert sum(cost, D(0)) <= funds
        # Self-trade prevention cancels an own order only if the funds left when the order reached it buy a lot
        # at its price.
        for cancel in out.maker_cancels:
            price = book_asks[cancel.order_id][0]
            before = sum((c for c, m in zip(cost, out.matches) if (m.price, m.maker_id) < (price, cancel.order_id)),
                         D(0))
            assert funds - before >= price * lot * (1 + fee), "cancelled an own order it could not have bought"
        if funds - sum(cost, D(0)) >= tick * lot * (1 + fee):
            return  # funds left that buy a lot at some price: how it ends depends on what comes next
    # Spent: done, and the same outcome on the book cut just after the last maker it traded with.
    assert (out.status, out.reason) == ((e.FILLED, "") if out.matches else (e.CANCELLED, e.FUNDS_EXHAUSTED))
    last = (out.matches[-1].price, out.matches[-1].maker_id) if out.matches else None
    consumed = {oid: a for oid, a in book_asks.items() if last and (a[0], oid) <= last}
    cut = _funds_buy_on(tick, lot, consumed, fee, funds, stp)
    assert (cut.status, cut.reason, cut.matches, cut.maker_cancels) == (
        out.status, out.reason, out.matches, out.maker_cancels)
