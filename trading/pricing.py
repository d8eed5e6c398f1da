"""Prices of held-rate quotes against the firm's inventory. Pure Python, no Django (like ``trading.engine``).

How a quote is priced (README "Quotes: pricing rules"):

1. **Reference price**: the volume-weighted average price (VWAP) of walking the firm's own order book to the
   requested size: the asks for a client buy, the bids for a client sell, best level first. A large quote walks
   deeper, so it gets a worse price. Where the book is too thin for the size, what it cannot fill is priced at
   the **fallback price** operations set for the market, but never better for the client than the deepest level
   the walk used (so a larger quote can never get a better price than a smaller one). No fallback and a thin
   book: no price.
2. **Spread** (basis points, per client tier and market) and **skew** by the firm's inventory position: a buy
   is priced ``reference x (1 + (spread + skew) / 10,000)`` rounded UP to the tick, a sell
   ``reference x (1 - (spread - skew) / 10,000)`` rounded DOWN to the tick; spread plus skew never goes below
   zero on either side, so the firm never quotes through its own reference. The skew is
   ``-skew_bps x utilisation``, where utilisation is the position over the limit on its side (-1 .. 1): a firm
   long the base asset lowers both prices (clients buy more and sell less), a firm short raises them.
3. **Amounts**: the notional ``price x size`` rounded up (buy: the client pays) or down (sell: the client
   receives) to the quote asset's precision; the fee ``notional x fee rate`` rounded up; the client's total is
   notional + fee for a buy, notional - fee for a sell.

Quantities are ``Decimal``; every product and quotient is computed with 60 significant digits (``EXACT``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, localcontext

BUY, SELL = "buy", "sell"
BOOK, BLENDED, FALLBACK = "book", "book+fallback", "fallback"

ZERO = Decimal(0)
ONE = Decimal(1)
BPS = Decimal(10_000)
EXACT = Context(prec=60)
REFERENCE_QUANTUM = Decimal("1e-18")  # references are stored at the ledger's 18 decimal places
SKEW_QUANTUM = Decimal("0.0001")  # a ten-thousandth of a basis point


@dataclass(frozen=True, slots=True)
class Level:
    """An aggregated price level of one side of the book: price and the open size at it."""

    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class Reference:
    """What filling ``size`` costs at the reference: ``notional`` exactly (the walk plus the fallback part), so
    prices are derived from the exact ratio and rounded once, at the end."""

    notional: Decimal
    size: Decimal
    book_size: Decimal  # how much of the size the book's levels filled
    source: str  # book, book+fallback or fallback

    @property
    def price(self) -> Decimal:
        """The VWAP to the size, at the ledger's 18 decimal places (as stored on a quote)."""
        with localcontext(EXACT):
            return (self.notional / self.size).quantize(REFERENCE_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class QuoteAmounts:
    notional: Decimal  # exact price x size
    quote_amount: Decimal  # notional at the quote asset's precision, rounded in the firm's favour
    fee: Decimal  # exact fee rounded up
    total: Decimal  # what the client pays (buy) or receives (sell), fee included


def reference_price(levels: Sequence[Level], size: Decimal, *, side: str, fallback: Decimal | None
                    ) -> Reference | None:
    """The VWAP of filling ``size`` from ``levels`` (best first: asks ascending for a client buy, bids
    descending for a client sell), the remainder at ``fallback`` (bounded by the deepest level used), or None
    when the book cannot fill the size and there is no fallback."""
    if size <= 0:
        raise ValueError("size must be positive")
    with localcontext(EXACT):
        remaining, notional, deepest = size, ZERO, None
        for level in levels:
            if remaining <= 0:
                break
            if level.size <= 0 or level.price <= 0:
                continue
            take = min(remaining, level.size)
            notional += take * level.price
            remaining -= take
            deepest = level.price
        filled = size - remaining
        if remaining > 0:
            if fallback is None or fallback <= 0:
                return None
            price = fallback
            if deepest is not None:
                price = max(fallback, deepest) if side == BUY else min(fallback, deepest)
            notional += remaining * price
        source = BOOK if remaining == 0 else (FALLBACK if filled == 0 else BLENDED)
    return Reference(notional=notional, size=size, book_size=filled, source=source)


def inventory_skew_bps(*, position: Decimal, max_long: Decimal, max_short: Decimal, skew_bps: Decimal) -> Decimal:
    """The skew (in basis points, added to the buy markup and taken off the sell markdown) for a firm holding
    ``position`` of the base asset. ``skew_bps`` is the skew at a full limit; zero turns skew off."""
    if skew_bps == 0 or position == 0:
        return ZERO
    limit = max_long if position > 0 else max_short
    with localcontext(EXACT):
        if limit <= 0:
            utilisation = ONE if position > 0 else -ONE
        else:
            utilisation = max(-ONE, min(ONE, position / limit))
        return (-skew_bps * utilisation).quantize(SKEW_QUANTUM, rounding=ROUND_HALF_EVEN) + 0


def quote_price(*, reference: Reference, side: str, spread_bps: Decimal, skew_bps: Decimal = ZERO,
                tick: Decimal) -> Decimal:
    """The all-in price offered to the client, on the market's tick grid, rounded in the firm's favour: from the
    exact reference notional, divided last, so a terminating price is exact before it is rounded."""
    with localcontext(EXACT):
        if side == BUY:
            markup = max(ZERO, spread_bps + skew_bps)
            return _to_tick(reference.notional * (BPS + markup) / (BPS * reference.size), tick, ROUND_CEILING)
        markdown = max(ZERO, spread_bps - skew_bps)
        return _to_tick(reference.notional * (BPS - markdown) / (BPS * reference.size), tick, ROUND_FLOOR)


def quote_amounts(*, price: Decimal, size: Decimal, side: str, fee_rate: Decimal, quote_precision: int
                  ) -> QuoteAmounts:
    quantum = Decimal(1).scaleb(-quote_precision)
    with localcontext(EXACT):
        notional = price * size
        fee = (notional * fee_rate).quantize(quantum, rounding=ROUND_CEILING)
        if side == BUY:
            quote_amount = notional.quantize(quantum, rounding=ROUND_CEILING)
            total = quote_amount + fee
        else:
            quote_amount = notional.quantize(quantum, rounding=ROUND_FLOOR)
            total = quote_amount - fee
    return QuoteAmounts(notional=notional, quote_amount=quote_amount, fee=fee, total=total)


def spread_captured(*, reference: Reference, side: str, quote_amount: Decimal) -> Decimal:
    """The firm's principal P&L of a quote at its reference: what the client pays above the reference notional
    of the size (buy), or what the client gets below it (sell), fee excluded."""
    with localcontext(EXACT):
        captured = quote_amount - reference.notional if side == BUY else reference.notional - quote_amount
        return captured.quantize(REFERENCE_QUANTUM, rounding=ROUND_HALF_EVEN)


def size_for_funds(*, funds: Decimal, lot: Decimal, max_size: Decimal,
                   total_for: Callable[[Decimal], Decimal | None]) -> Decimal:
    """The largest multiple of ``lot`` up to ``max_size`` whose total (``total_for(size)``; None: no price)
    stays within ``funds``, found by bisection; zero when not even one lot fits.

    The total grows with the size (the walk's cumulative notional does), up to the tick rounding of a sell's
    price, so bisection finds the boundary; the caller gets a size whose total is never above ``funds``."""
    low, high = 0, int(max_size // lot)  # low always fits (zero does), high + 1 never is tried
    while low < high:
        middle = (low + high + 1) // 2
        total = total_for(middle * lot)
        if total is not None and total <= funds:
            low = middle
        else:
            high = middle - 1
    return low * lot


def within_limits(*, position: Decimal, max_long: Decimal, max_short: Decimal) -> bool:
    """A position is within limits when ``-max_short <= position <= max_long``."""
    return -max_short <= position <= max_long


def moved_against_firm(*, quoted: Decimal, current: Decimal, side: str, tolerance_bps: Decimal) -> bool:
    """Whether the reference moved against the firm by more than the tolerance since the quote was priced: up
    for a client buy (the firm would sell below the market), down for a client sell."""
    with localcontext(EXACT):
        if side == BUY:
            return current > quoted * (ONE + tolerance_bps / BPS)
        return current < quoted * (ONE - tolerance_bps / BPS)


def _to_tick(value: Decimal, tick: Decimal, rounding: str) -> Decimal:
    with localcontext(EXACT):
        return (value / tick).to_integral_value(rounding=rounding) * tick
