"""The catalogue of error codes an API client can meet: every ``Code`` enum of the project, in the order of the
README's "Error codes" section. A test keeps the README and this list equal."""

from __future__ import annotations

from enum import StrEnum

from django.utils.module_loading import import_string

# (where the codes come from, the dotted path of the enum); faces import this module, domains never do.
ENUMS = [
    ("generic", "core.exceptions.Code"),
    ("ledger", "ledger.errors.Code"),
    ("events", "events.errors.EventsCode"),
    ("accounts", "accounts.errors.Code"),
    ("trading", "trading.errors.Code"),
    ("quotes", "trading.errors.QuoteCode"),
    ("compliance", "compliance.errors.Code"),
    ("streams", "streams.errors.Code"),
]


def catalogue() -> list[tuple[str, type[StrEnum]]]:
    return [(where, import_string(path)) for where, path in ENUMS]


def all_codes() -> set[str]:
    return {member.value for _, enum in catalogue() for member in enum}
