"""Drafts: events whose payload is rendered after commit, by the sequencer, instead of in the writer's transaction.

The matcher writes thousands of events a second. Rendering each as its REST resource (a dozen decimal amounts at
their asset's precision, times in ISO 8601) cost it about a sixth of its time per order, over the 10% budget. So a
matcher batch writes *drafts*: the values that changed, unformatted (``{"draft": "<kind>", "v": [...]}``), in the
same transaction as the change as every event. The sequencer, off the hot path, renders each draft once with the
renderer its domain registered (the domain's representation functions, the same ones the API uses, reading the
immutable parts of the resource: an order's parameters, a fill, a hold's amount) and stores the result with the
event's number (``Sequenced.payload``). Every channel sends that payload, so nothing downstream sees a draft.

Renderers are registered by the domains (``AppConfig.ready``), so this module, below them, imports none of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

DRAFT = "draft"

# kind -> renders a list of drafts' values (in order) into the REST payloads
_renderers: dict[str, Callable[[Sequence[list]], list[dict]]] = {}


def renderer_register(kind: str, render: Callable[[Sequence[list]], list[dict]]) -> None:
    _renderers[kind] = render


def draft(kind: str, values: list) -> dict:
    return {DRAFT: kind, "v": values}


def is_draft(payload) -> bool:
    return isinstance(payload, dict) and DRAFT in payload and len(payload) == 2


def rendered(payloads: dict[int, dict]) -> dict[int, dict]:
    """{event id: draft} -> {event id: REST payload}, each kind rendered in one call."""
    by_kind: dict[str, list[tuple[int, list]]] = defaultdict(list)
    for event_id, payload in payloads.items():
        by_kind[payload[DRAFT]].append((event_id, payload["v"]))
    out = {}
    for kind, items in by_kind.items():
        render = _renderers.get(kind)
        if render is None:
            raise LookupError(f"no renderer registered for event drafts of kind {kind!r}")
        out.update(zip((event_id for event_id, _ in items), render([values for _, values in items])))
    return out
