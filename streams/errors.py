"""What the WebSocket face answers when a client's message cannot be served (an ``error`` message with a
``code``), and the close codes it ends a connection with (README "Streams")."""

from enum import IntEnum, StrEnum


class Code(StrEnum):
    """Codes of ``{"type": "error", "code": ..., "message": ...}`` messages; the connection stays open."""

    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_CHANNEL = "unknown_channel"
    UNKNOWN_MARKET = "unknown_market"
    MARKET_REQUIRED = "market_required"
    AUTHENTICATION_REQUIRED = "authentication_required"
    SCOPE_REQUIRED = "scope_required"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"


class CloseCode(IntEnum):
    """Why the server closed the connection (the close frame's reason says it in words)."""

    INVALID_API_KEY = 4001  # the handshake's credential was refused: reconnect with a valid key
    SLOW_CONSUMER = 4008  # fell behind: reconnect, resync from REST and follow the sequences
    TOO_MANY_CONNECTIONS = 4029  # per IP or per key (STREAMS_MAX_CONNECTIONS_PER_*)
    SERVER_RESTART = 1012  # the server is restarting: reconnect and resync
