"""Small input checks shared by the services of every app."""

from __future__ import annotations

from collections.abc import Iterable

from core.exceptions import Code, DomainError


def require_choice(value, choices: Iterable, *, field: str, error: type[DomainError] = DomainError) -> None:
    """Refuse a value outside ``choices`` (a Django ``TextChoices`` class or any iterable of values) with
    ``invalid_choice`` on ``field``, raised as the caller's domain error class."""
    allowed = list(getattr(choices, "values", choices))
    if value not in allowed:
        raise error(f"{value!r} is not one of {sorted(allowed)}.", code=Code.INVALID_CHOICE, field=field)
