"""The rounding rule of fills, on its own (no database): worked examples and the properties it promises."""

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trading.fill_amounts import buy_hold, fill_apply

D = Decimal


@dataclass
class Totals:
    filled_size: Decimal = D(0)
    filled_quote: Decimal = D(0)
    fees_paid: Decimal = D(0)
    settled_quote: Decimal = D(0)


def test_even_amounts_move_exactly():
    buyer, seller = Totals(), Totals()
    amounts = fill_apply(buyer=buyer, seller=seller, price=D("20000.00"), size=D("0.5"), buyer_rate=D("0.002"),
                         seller_rate=D("0.001"), quote_precision=2)
    assert (amounts.notional, amounts.buyer_quote, amounts.seller_quote, amounts.fee_revenue) == (
        D("10000"), D("10020.00"), D("9990.00"), D("30.00"))
    assert (buyer.filled_size, buyer.filled_quote, buyer.fees_paid, buyer.settled_quote) == (
        D("0.5"), D("10000"), D("20"), D("10020.00"))


def test_buyer_rounds_up_its_running_total_and_sellers_round_down_each_fill():
    buyer, first, second = Totals(), Totals(), Totals()
    price = D("20000.01")
    a = fill_apply(buyer=buyer, seller=first, price=price, size=D("0.00123"), buyer_rate=D("0.002"),
                   seller_rate=D("0.001"), quote_precision=2)
    # 24.6000123 notional; the buyer owes 24.6492123246 -> 24.65; the seller gets 24.5754122877 -> 24.57.
    assert (a.buyer_quote, a.seller_quote, a.fee_revenue) == (D("24.65"), D("24.57"), D("0.08"))
    b = fill_apply(buyer=buyer, seller=second, price=price, size=D("0.00077"), buyer_rate=D("0.002"),
                   seller_rate=D("0.001"), quote_precision=2)
    # The buyer owes 40.08002004 in all -> 40.09, so this fill debits 40.09 - 24.65 = 15.44.
    assert (b.buyer_quote, b.seller_quote, b.fee_revenue) == (D("15.44"), D("15.38"), D("0.06"))
    assert buyer.settled_quote == buy_hold(price=price, size=D("0.002"), fee_rate=D("0.002"), quote_precision=2)


def test_a_tiny_fill_can_move_no_quote_to_the_seller_and_still_balances():
    buyer, seller = Totals(), Totals()
    amounts = fill_apply(buyer=buyer, seller=seller, price=D("1.00"), size=D("0.001"), buyer_rate=D("0.002"),
                         seller_rate=D("0.001"), quote_precision=2)
    assert (amounts.buyer_quote, amounts.seller_quote, amounts.fee_revenue) == (D("0.01"), D("0"), D("0.01"))


fills = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=10_000_000).map(lambda n: D(n) / 100),  # price, tick 0.01
        st.integers(min_value=1, max_value=100_000).map(lambda n: D(n) / 100_000),  # size, lot 0.00001
        st.sampled_from([D(0), D("0.001"), D("0.002"), D("0.0025"), D("0.00012345")]),
        st.sampled_from([D(0), D("0.001"), D("0.002"), D("0.0035")]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(fills, st.sampled_from([2, 6, 8]))
def test_fees_are_never_negative_and_the_buyer_never_pays_more_than_its_hold(flow, quote_precision):
    buyer = Totals()
    limit = max(price for price, *_ in flow)
    size = sum((s for _, s, *_ in flow), D(0))
    worst_rate = max(rate for _, _, rate, _ in flow)
    paid = D(0)
    for price, qty, buyer_rate, seller_rate in flow:
        seller = Totals()
        amounts = fill_apply(buyer=buyer, seller=seller, price=price, size=qty, buyer_rate=buyer_rate,
                             seller_rate=seller_rate, quote_precision=quote_precision)
        assert amounts.seller_quote >= 0 and amounts.fee_revenue >= 0 and amounts.buyer_quote >= 0
        assert amounts.seller_quote <= amounts.notional - amounts.seller_fee
        paid += amounts.buyer_quote
    assert paid == buyer.settled_quote
    assert paid >= buyer.filled_quote + buyer.fees_paid  # the buyer pays at least its exact cost...
    assert paid <= buy_hold(price=limit, size=size, fee_rate=worst_rate, quote_precision=quote_precision)
