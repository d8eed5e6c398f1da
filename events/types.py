"""The catalogue of event types (README "Events"). A type names the resource and what happened to it; the
payload is that resource as the REST API shows it."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    ORDER_ACCEPTED = "order.accepted"
    ORDER_OPEN = "order.open"
    ORDER_PARTIALLY_FILLED = "order.partially_filled"
    ORDER_FILLED = "order.filled"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_REJECTED = "order.rejected"
    ORDER_PENDING_TRIGGER = "order.pending_trigger"
    ORDER_TRIGGERED = "order.triggered"
    ORDER_EXPIRED = "order.expired"
    ORDER_AMENDED = "order.amended"
    FILL_CREATED = "fill.created"
    HOLD_PLACED = "hold.placed"
    HOLD_RELEASED = "hold.released"
    DEPOSIT_REQUESTED = "deposit.requested"
    DEPOSIT_APPROVED = "deposit.approved"
    DEPOSIT_COMPLETED = "deposit.completed"
    DEPOSIT_REJECTED = "deposit.rejected"
    WITHDRAWAL_REQUESTED = "withdrawal.requested"
    WITHDRAWAL_APPROVED = "withdrawal.approved"
    WITHDRAWAL_COMPLETED = "withdrawal.completed"
    WITHDRAWAL_REJECTED = "withdrawal.rejected"
    WITHDRAWAL_CANCELLED = "withdrawal.cancelled"
    ACCOUNT_STATUS_CHANGED = "account.status_changed"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    MARKET_STATUS_CHANGED = "market.status_changed"
    KILL_SWITCH_ENGAGED = "kill_switch.engaged"
    KILL_SWITCH_RELEASED = "kill_switch.released"
    ADJUSTMENT_POSTED = "adjustment.posted"


# Not stored in the log: sent to one webhook endpoint on request, to test it.
PING = "ping"

# Stored in the log for the WebSocket streamer only (README "Streams"): the pull API, webhooks and RabbitMQ skip
# them. ``book.changed`` (public, with the market): the resting orders one transaction changed and the market's
# book sequence after it (``trading.outbox.book_changed``).
BOOK_CHANGED = "book.changed"
STREAM_ONLY = (BOOK_CHANGED,)

# As the API's choice fields list them (value, label); the OpenAPI schema names this set EventTypeEnum.
EVENT_TYPE_CHOICES = [(t.value, t.value) for t in EventType]
