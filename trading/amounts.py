"""How market amounts are written as text, one rule for the API and the reports (the trade blotter), so a
price reads the same everywhere: ``30000.00``, never ``30000`` in one place and ``30000.00`` in another.

- ``base``: the base asset's precision (sizes);
- ``quote``: the quote asset's precision (what moved in a balance);
- ``price``: the quote asset's precision, or the tick size's decimals when finer;
- ``exact``: the quote asset's precision, or more when the value has more (exact notionals and fee accruals).
"""

from __future__ import annotations

from decimal import Decimal

from trading.fill_amounts import decimal_places


def places(kind: str, *, base_precision: int, quote_precision: int, tick_size: Decimal, value: Decimal) -> int:
    if kind == "base":
        return base_precision
    if kind == "quote":
        return quote_precision
    if kind == "price":
        return max(quote_precision, decimal_places(tick_size))
    return max(quote_precision, decimal_places(value))  # exact accruals, in full

