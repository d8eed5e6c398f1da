"""Connections open per client IP and per API key, counted by this ASGI process (README "Streams": ./run
starts one; behind several, each enforces its limits on what it serves)."""

from __future__ import annotations

from collections import Counter

_open: Counter = Counter()


def acquire(ident: str, limit: int) -> bool:
    """Count one more connection of ``ident`` ("ip:1.2.3.4", "key:7"), unless it already has ``limit``."""
    if _open[ident] >= limit:
        return False
    _open[ident] += 1
    return True


def release(ident: str) -> None:
    _open[ident] -= 1
    if _open[ident] <= 0:
        del _open[ident]
