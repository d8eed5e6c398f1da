"""Holds and adjustments as the event log shows them (plain dicts; no DRF). Amounts are decimal strings at the
asset's precision, times ISO 8601 in UTC, as everywhere in the client API."""

from __future__ import annotations

from decimal import Decimal

from core.representation import fixed, iso
from ledger.selectors import asset_precisions

_places: dict[str, int] = {}


def asset_places(code: str) -> int:
    """Decimal places of an asset (reference data: precision never changes once set)."""
    places = _places.get(code)
    if places is None:
        places = _places[code] = asset_precisions([code])[code]
    return places


def hold_data(hold, *, released: Decimal | None = None, updated_at: str | None = None) -> dict:
    """A hold (what an open order or a pending withdrawal reserves). ``released``: what a release gave back;
    ``updated_at`` (rendered) overrides the object's (the matcher releases holds in bulk)."""
    places = asset_places(hold.asset_id)
    data = {
        "id": hold.pk,
        "asset": hold.asset_id,
        "amount": fixed(hold.amount, places),
        "remaining": fixed(hold.remaining, places),
        "status": str(hold.status),
        "reason": hold.reason,
        "created_at": iso(hold.created_at),
        "updated_at": updated_at or iso(hold.updated_at),
    }
    if released is not None:
        data["released"] = fixed(released, places)
    return data


def adjustment_data(adjustment) -> dict:
    """A manual adjustment of a client balance, once decided."""
    places = asset_places(adjustment.asset_id)
    return {
        "id": adjustment.pk,
        "asset": adjustment.asset_id,
        "amount": fixed(adjustment.amount, places),
        "reason": adjustment.reason,
        "status": str(adjustment.status),
        "reference": f"adjustment:{adjustment.pk}",
        "proposed_at": iso(adjustment.proposed_at),
        "decided_at": iso(adjustment.decided_at),
    }
