"""Template filters of the operations console."""

from decimal import Decimal

from django import template

from ledger.money import plain

register = template.Library()


@register.filter
def amount(value) -> str:
    """A Decimal without the trailing zeros of its 18 stored places and never in exponent notation."""
    if not isinstance(value, Decimal):
        return "" if value is None else str(value)
    return plain(value)
