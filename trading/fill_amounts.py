"""What a fill moves, to the last unit. Pure arithmetic: no queries.

The rounding rule (README "Fees and rounding"):

- Fees are charged in the quote asset on both sides, at the order's maker or taker rate (rates are fixed on
  the order when it is placed, so its hold always covers them). A buy holds quote only, a sell base only.
- The base asset moves exactly: sizes are lot multiples, and lots are exact at the base asset's precision.
- The notional ``price x size`` and the fees ``notional x rate`` are kept *exactly* on the orders
  (``filled_quote``, ``fees_paid``; 18 decimal places are enough, checked when an order is placed).
- The buyer pays, over the order's life, its exact cost ``filled_quote + fees_paid`` rounded UP to the quote
  precision: each fill debits the increase of that rounded total. Rounding the running total (not each fill)
  means the buyer never pays more than the hold taken at placement, however many fills there are.
- The seller receives, per fill, ``notional - fee`` rounded DOWN to the quote precision.
- The firm's fee account receives the difference. It is never negative: the buyer's debit exceeds its exact
  cost minus one quantum, the seller's credit does not exceed its exact proceeds, and the exact cost exceeds
  the exact proceeds by both fees, so the difference is a whole number of quanta greater than minus one.

Value is neither created nor destroyed: every fill is one balanced ledger entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from ledger.money import round_down, round_up
from trading.engine import EXACT


@dataclass(frozen=True, slots=True)
class FillAmounts:
    notional: Decimal
    buyer_fee: Decimal  # exact accrual
    seller_fee: Decimal  # exact accrual
    buyer_quote: Decimal  # debited to the buyer, at quote precision
    seller_quote: Decimal  # credited to the seller, at quote precision

    @property
    def fee_revenue(self) -> Decimal:
        return self.buyer_quote - self.seller_quote


def fill_apply(*, buyer, seller, price: Decimal, size: Decimal, buyer_rate: Decimal, seller_rate: Decimal,
               quote_precision: int) -> FillAmounts:
    """Add one fill to both orders' running totals and return what the ledger moves for it.

    ``buyer`` and ``seller`` are orders (anything with ``filled_size``, ``filled_quote``, ``fees_paid`` and
    ``settled_quote``); fills must be applied in the order they happened.
    """
    with localcontext(EXACT):
        notional = price * size
        buyer_fee, seller_fee = notional * buyer_rate, notional * seller_rate
        _accrue(buyer, size, notional, buyer_fee)
        _accrue(seller, size, notional, seller_fee)
        owed = round_up(buyer.filled_quote + buyer.fees_paid, quote_precision)
        buyer_quote = owed - buyer.settled_quote
        seller_quote = round_down(notional - seller_fee, quote_precision)
        buyer.settled_quote = owed
        seller.settled_quote += seller_quote
    return FillAmounts(notional, buyer_fee, seller_fee, buyer_quote, seller_quote)


def _accrue(order, size: Decimal, notional: Decimal, fee: Decimal) -> None:
    order.filled_size += size
    order.filled_quote += notional
    order.fees_paid += fee


def buy_hold(*, price: Decimal, size: Decimal, fee_rate: Decimal, quote_precision: int) -> Decimal:
    """Quote to hold for a limit buy: its worst-case cost (every fill at the limit, at the higher fee rate)."""
    with localcontext(EXACT):
        return round_up(price * size * (1 + fee_rate), quote_precision)


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0
