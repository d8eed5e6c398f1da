"""The pure pricing of quotes (``trading.pricing``) against hand-computed books, to the last unit."""

from decimal import Decimal as D

import pytest

from trading import pricing
from trading.pricing import Level

ASKS = [Level(D("100.00"), D("0.5")), Level(D("101.00"), D("1.0")), Level(D("103.00"), D("2.0"))]
BIDS = [Level(D("99.00"), D("1.0")), Level(D("98.00"), D("1.0"))]


def ref(levels, size, side="buy", fallback=None):
    return pricing.reference_price(levels, D(size), side=side, fallback=None if fallback is None else D(fallback))


def test_vwap_walks_the_asks_best_first():
    # 0.5 @ 100 + 0.5 @ 101 = 100.50 for 1.0
    one = ref(ASKS, "1")
    assert (one.notional, one.price, one.book_size, one.source) == (D("100.50"), D("100.5"), D("1.0"), "book")
    # 0.5 @ 100 + 1.0 @ 101 + 0.5 @ 103 = 202.50 for 2.0: the larger quote gets a worse price
    two = ref(ASKS, "2")
    assert (two.notional, two.price) == (D("202.50"), D("101.25"))
    assert ref(ASKS, "0.5").price == D("100") and ref(ASKS, "0.3").price == D("100")


def test_vwap_walks_the_bids_for_a_client_sell():
    # 1.0 @ 99 + 0.5 @ 98 = 148.00 for 1.5: 98.666... (stored at 18 places, rounded half even)
    r = ref(BIDS, "1.5", side="sell")
    assert r.notional == D("148.00")
    assert r.price == D("98.666666666666666667")


def test_a_thin_book_is_completed_at_the_fallback_never_better_than_its_deepest_level():
    # the book fills 3.5 for 357.00; 1.5 more at the fallback 105 = 157.50 -> 514.50 / 5 = 102.9
    high = ref(ASKS, "5", fallback="105")
    assert (high.notional, high.price, high.book_size, high.source) == (D("514.50"), D("102.9"), D("3.5"),
                                                                        "book+fallback")
    # a fallback below the deepest ask used (103) would price the remainder better than the book: 103 is used
    low = ref(ASKS, "5", fallback="99")
    assert (low.notional, low.price) == (D("511.50"), D("102.3"))
    # for a client sell the bound is the other way round: 2.0 filled (197.00), 1.0 at min(98, 120) = 98
    assert ref(BIDS, "3", side="sell", fallback="120").notional == D("295.00")
    assert ref(BIDS, "3", side="sell", fallback="90").notional == D("287.00")


def test_no_book_and_no_fallback_is_no_price():
    assert ref(ASKS, "5") is None
    assert ref([], "1") is None
    only_fallback = ref([], "2", fallback="50000")
    assert (only_fallback.price, only_fallback.book_size, only_fallback.source) == (D("50000"), D("0"), "fallback")


def test_the_spread_is_applied_to_the_exact_reference_and_rounded_in_the_firms_favour():
    # buy: 100.50 x 1.0025 = 100.75125 -> up to the tick: 100.76
    assert pricing.quote_price(reference=ref(ASKS, "1"), side="buy", spread_bps=D(25), tick=D("0.01")) == D("100.76")
    # sell: 148 x 0.9975 / 1.5 = 98.42 exactly (not 98.41 from a rounded reference)
    assert pricing.quote_price(reference=ref(BIDS, "1.5", side="sell"), side="sell", spread_bps=D(25),
                               tick=D("0.01")) == D("98.42")
    # sell, not exact: 99 x 0.9990 = 98.901 -> down to the tick: 98.90
    assert pricing.quote_price(reference=ref(BIDS, "1", side="sell"), side="sell", spread_bps=D(10),
                               tick=D("0.01")) == D("98.90")
    # zero spread: the reference itself, rounded
    assert pricing.quote_price(reference=ref(BIDS, "1.5", side="sell"), side="sell", spread_bps=D(0),
                               tick=D("0.01")) == D("98.66")


def test_amounts_round_notional_by_side_and_fees_up():
    buy = pricing.quote_amounts(price=D("100.76"), size=D("0.33333"), side="buy", fee_rate=D("0.002"),
                                quote_precision=2)
    # 100.76 x 0.33333 = 33.5863308 -> 33.59; fee 0.0671726616 -> 0.07; total 33.66
    assert (buy.notional, buy.quote_amount, buy.fee, buy.total) == (D("33.5863308"), D("33.59"), D("0.07"),
                                                                    D("33.66"))
    sell = pricing.quote_amounts(price=D("100.76"), size=D("0.33333"), side="sell", fee_rate=D("0.002"),
                                 quote_precision=2)
    assert (sell.quote_amount, sell.fee, sell.total) == (D("33.58"), D("0.07"), D("33.51"))


def test_spread_captured_is_against_the_exact_reference_notional():
    reference = ref(ASKS, "1")
    assert pricing.spread_captured(reference=reference, side="buy", quote_amount=D("100.76")) == D("0.26")
    sell = ref(BIDS, "1.5", side="sell")
    assert pricing.spread_captured(reference=sell, side="sell", quote_amount=D("147.63")) == D("0.37")


@pytest.mark.parametrize("position, expected", [
    ("0", "0"), ("5", "-10"), ("10", "-20"), ("30", "-20"), ("-1", "10"), ("-2", "20"), ("-7", "20"),
])
def test_skew_is_proportional_to_the_limit_used_and_capped(position, expected):
    skew = pricing.inventory_skew_bps(position=D(position), max_long=D("10"), max_short=D("2"), skew_bps=D("20"))
    assert skew == D(expected)


def test_skew_moves_both_prices_the_way_that_brings_the_position_back():
    reference = ref(ASKS, "1")  # 100.50
    long_skew = pricing.inventory_skew_bps(position=D("5"), max_long=D("10"), max_short=D("0"), skew_bps=D("20"))
    # long: the buy markup shrinks from 25 to 15 bps (100.50 x 1.0015 = 100.65075 -> 100.66)
    assert pricing.quote_price(reference=reference, side="buy", spread_bps=D(25), skew_bps=long_skew,
                               tick=D("0.01")) == D("100.66")
    # ... and the sell markdown grows to 35 bps (100.50 x 0.9965 = 100.14825 -> 100.14)
    assert pricing.quote_price(reference=reference, side="sell", spread_bps=D(25), skew_bps=long_skew,
                               tick=D("0.01")) == D("100.14")
    # a skew larger than the spread never quotes through the reference
    assert pricing.quote_price(reference=reference, side="buy", spread_bps=D(5), skew_bps=D(-50),
                               tick=D("0.01")) == D("100.50")
    assert pricing.inventory_skew_bps(position=D("5"), max_long=D("10"), max_short=D("0"), skew_bps=D(0)) == 0


def test_size_for_funds_is_the_largest_lot_within_the_funds():
    def total_for(size):
        reference = ref(ASKS, str(size))
        if reference is None:
            return None
        price = pricing.quote_price(reference=reference, side="buy", spread_bps=D(25), tick=D("0.01"))
        return pricing.quote_amounts(price=price, size=size, side="buy", fee_rate=D("0.002"),
                                     quote_precision=2).total

    size = pricing.size_for_funds(funds=D("100.97"), lot=D("0.00001"), max_size=D("1000"), total_for=total_for)
    assert size == D("1.00000") and total_for(size) == D("100.97")
    assert total_for(size + D("0.00001")) > D("100.97")
    # more than the book can fill (3.5) has no price: the size stops where the book does
    assert pricing.size_for_funds(funds=D("1000000"), lot=D("0.5"), max_size=D("1000"), total_for=total_for) == D("3.5")
    assert pricing.size_for_funds(funds=D("0.01"), lot=D("0.00001"), max_size=D("1"), total_for=total_for) == 0


def test_limits_and_tolerance():
    assert pricing.within_limits(position=D("10"), max_long=D("10"), max_short=D("0"))
    assert not pricing.within_limits(position=D("10.00000001"), max_long=D("10"), max_short=D("0"))
    assert pricing.within_limits(position=D("-2"), max_long=D("0"), max_short=D("2"))
    assert not pricing.within_limits(position=D("-2.1"), max_long=D("0"), max_short=D("2"))
    # 100 bps: a buy quoted at a reference of 100 is honoured up to 101, a sell down to 99
    assert not pricing.moved_against_firm(quoted=D("100"), current=D("101"), side="buy", tolerance_bps=D(100))
    assert pricing.moved_against_firm(quoted=D("100"), current=D("101.01"), side="buy", tolerance_bps=D(100))
    assert not pricing.moved_against_firm(quoted=D("100"), current=D("50"), side="buy", tolerance_bps=D(100))
    assert not pricing.moved_against_firm(quoted=D("100"), current=D("99"), side="sell", tolerance_bps=D(100))
    assert pricing.moved_against_firm(quoted=D("100"), current=D("98.99"), side="sell", tolerance_bps=D(100))
