"""Typed readers for environment variables: a malformed value fails loudly at start-up."""

import os
from decimal import Decimal, InvalidOperation

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RuntimeError(f"{name} must be a boolean, got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def env_decimal(name: str, default: Decimal) -> Decimal:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return Decimal(raw)
    except InvalidOperation as exc:
        raise RuntimeError(f"{name} must be a decimal number, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_decimal_map(name: str) -> dict[str, Decimal]:
    """``"BTC=0.25,ETH=5"`` as ``{"BTC": Decimal("0.25"), "ETH": Decimal("5")}``."""
    result = {}
    for item in env_list(name, []):
        key, _, raw = (part.strip() for part in item.partition("="))
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = None
        if not key or value is None or not value.is_finite():
            raise RuntimeError(f"{name} must look like 'BTC=0.25,ETH=5', got {item!r}")
        result[key] = value
    return result
