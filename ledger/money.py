"""Decimal helpers. Money is never a float; amounts are exact at the asset's precision."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from ledger.errors import Code, InvalidAmount


def to_decimal(value, *, field: str | None = None) -> Decimal:
    """Parse a client-supplied amount. Floats are refused: they cannot say what they mean exactly."""
    if isinstance(value, float) or isinstance(value, bool):
        raise InvalidAmount("Amounts must be decimal strings, not floating-point numbers.", field=field)
    if isinstance(value, str) and value != value.strip():
        # Decimal() forgives surrounding whitespace ("1\n"): an amount is exactly its digits.
        raise InvalidAmount(f"{value!r} is not a decimal number.", field=field)
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise InvalidAmount(f"{value!r} is not a decimal number.", field=field) from exc
    if not result.is_finite():
        raise InvalidAmount("Amounts must be finite.", field=field)
    return result


def quantum(precision: int) -> Decimal:
    return Decimal(1).scaleb(-precision)


def is_exact(amount: Decimal, precision: int) -> bool:
    return amount == amount.quantize(quantum(precision), rounding=ROUND_FLOOR)


def require_exact(amount: Decimal, precision: int, *, field: str | None = None) -> Decimal:
    if not is_exact(amount, precision):
        raise InvalidAmount(
            f"{amount} has more than {precision} decimal places.", code=Code.TOO_PRECISE, field=field
        )
    return amount.quantize(quantum(precision))


def round_down(amount: Decimal, precision: int) -> Decimal:
    """What a client receives rounds toward zero: value is never created."""
    return amount.quantize(quantum(precision), rounding=ROUND_FLOOR)


def round_up(amount: Decimal, precision: int) -> Decimal:
    """What the firm charges rounds up, in the firm's favour."""
    return amount.quantize(quantum(precision), rounding=ROUND_CEILING)


def plain(amount: Decimal) -> str:
    """Fixed-point text without trailing zeros or exponent: ``1.500000000000000000`` -> ``1.5``, zero -> ``0``."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def at_precision(amount: Decimal, precision: int) -> str:
    """An amount as text at its asset's precision (``9000.000000000000000000`` -> ``9000.00`` for USD), as the
    API shows it. An amount not exact at that precision is shown exactly rather than rounded."""
    return format(amount.quantize(quantum(precision)) if is_exact(amount, precision) else amount, "f")
