"""Plain renderers shared by the REST API and the event log, so an event's payload is byte for byte the
resource the API shows (README "Events"). No DRF here: the domain modules that write events use them too."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import cache


@cache
def quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def fixed(amount: Decimal | None, places: int) -> str | None:
    """``amount`` at exactly ``places`` decimal places, in plain notation (DRF's DecimalField style)."""
    if amount is None:
        return None
    return format(amount.quantize(quantum(places)), "f")


def iso(value: datetime | None) -> str | None:
    """A time as DRF's DateTimeField renders it with USE_TZ and UTC: ISO 8601, ``Z`` for UTC."""
    if value is None:
        return None
    text = (value if value.tzinfo is UTC else value.astimezone(UTC)).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
