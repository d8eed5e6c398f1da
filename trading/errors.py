"""Error codes of the trading domain, each a stable ``code`` the API renders as ``{"code","message","field"}``.

The generic codes trading also raises (``invalid``, ``invalid_choice``, ``does_not_exist``,
``permission_denied``, ...) are ``core.exceptions.Code``'s.
"""

from enum import StrEnum

from core.exceptions import Conflict, DomainError, Forbidden


class Code(StrEnum):
    """Every code of trading's own."""

    # The error classes below.
    TRADING_ERROR = "trading_error"
    INVALID_ORDER = "invalid_order"
    MARKET_NOT_OPEN = "market_not_open"
    ORDER_NOT_OPEN = "order_not_open"
    CLIENT_ORDER_ID_CONFLICT = "client_order_id_conflict"
    MARKET_MISCONFIGURED = "market_misconfigured"
    # An invalid order: its shape.
    NOT_POSITIVE = "not_positive"
    PRICE_REQUIRED = "price_required"
    SIZE_REQUIRED = "size_required"
    PRICE_NOT_ALLOWED = "price_not_allowed"
    FUNDS_NOT_ALLOWED = "funds_not_allowed"
    SIZE_OR_FUNDS = "size_or_funds"
    POST_ONLY_REQUIRES_GTC = "post_only_requires_gtc"
    POST_ONLY_REQUIRES_LIMIT = "post_only_requires_limit"
    FOK_REQUIRES_SIZE = "fok_requires_size"
    # An invalid order: the market's grid and the account's limits.
    INVALID_TICK = "invalid_tick"
    INVALID_LOT = "invalid_lot"
    TOO_PRECISE = "too_precise"
    SIZE_BELOW_MINIMUM = "size_below_minimum"
    SIZE_ABOVE_MAXIMUM = "size_above_maximum"
    ORDER_SIZE_LIMIT_EXCEEDED = "order_size_limit_exceeded"
    # An invalid order: stops, good-til-time and metadata (README "Order types").
    STOP_PRICE_REQUIRED = "stop_price_required"
    STOP_PRICE_NOT_ALLOWED = "stop_price_not_allowed"
    STOP_BUY_REQUIRES_FUNDS = "stop_buy_requires_funds"
    EXPIRE_TIME_REQUIRED = "expire_time_required"
    EXPIRE_TIME_NOT_ALLOWED = "expire_time_not_allowed"
    EXPIRE_TIME_TOO_SOON = "expire_time_too_soon"
    GTT_REQUIRES_LIMIT = "gtt_requires_limit"
    INVALID_METADATA = "invalid_metadata"
    # Amending an order (README "Order types: amend").
    AMEND_NOTHING = "amend_nothing"
    AMEND_NOT_ALLOWED = "amend_not_allowed"
    AMEND_SIZE_NOT_ABOVE_FILLED = "amend_size_not_above_filled"
    # The account may not trade (raised as accounts' AccountNotOperational).
    # Fee-rate and market-parameter changes (four eyes) and the matcher's isolation of an order it cannot settle.
    FEE_RATE_OUT_OF_RANGE = "fee_rate_out_of_range"
    INVALID_PARAMETER = "invalid_parameter"
    FOUR_EYES = "four_eyes"
    ALREADY_DECIDED = "already_decided"
    REASON_REQUIRED = "reason_required"
    SETTLEMENT_FAILED = "settlement_failed"
    # Public market data: the query of candles.
    INVALID_GRANULARITY = "invalid_granularity"
    INVALID_TIME_RANGE = "invalid_time_range"
    # Pre-trade risk (trading.services.risk) and the client's controls (trading.services.controls).
    MARKET_LIMIT_ONLY = "market_limit_only"
    MARKET_POST_ONLY = "market_post_only"
    PRICE_COLLAR = "price_collar"
    ORDER_NOTIONAL_EXCEEDED = "order_notional_exceeded"
    DAILY_NOTIONAL_EXCEEDED = "daily_notional_exceeded"
    OPEN_ORDER_LIMIT_REACHED = "open_order_limit_reached"
    KILL_SWITCH_ENGAGED = "kill_switch_engaged"
    KILL_SWITCH_HELD_BY_OPERATIONS = "kill_switch_held_by_operations"
    INVALID_TIMEOUT = "invalid_timeout"


class TradingError(DomainError):
    code = Code.TRADING_ERROR


class InvalidOrder(TradingError):
    """The order itself is malformed or off the market's grid; the code says how (``invalid_tick`` ...)."""

    code = Code.INVALID_ORDER


class MarketNotOpen(Conflict):
    code = Code.MARKET_NOT_OPEN


class OrderNotOpen(Conflict):
    """The order is already filled, cancelled or rejected."""

    code = Code.ORDER_NOT_OPEN


class OrderConflict(Conflict):
    """The client order id was used before for an order with other parameters."""

    code = Code.CLIENT_ORDER_ID_CONFLICT


class ParameterError(TradingError):
    """A proposed fee-rate or market-parameter change is out of bounds or malformed; the code says how."""

    code = Code.INVALID_PARAMETER


class RiskRefused(TradingError):
    """A pre-trade risk limit refuses the order (``price_collar``, ``order_notional_exceeded``, ...)."""

    code = Code.PRICE_COLLAR


class KillSwitchEngaged(Forbidden):
    """The account's kill switch is on: no new orders until it is released."""

    code = Code.KILL_SWITCH_ENGAGED


class MarketMisconfigured(TradingError):
    """tick x lot x fee rate would need more than the 18 decimal places the ledger stores exactly."""

    code = Code.MARKET_MISCONFIGURED


# --- quotes, inventory and conversions ----------------------------------------------------------------------


class QuoteCode(StrEnum):
    """The codes of quotes, conversions and the desk's controls (README "Quotes: error codes"), beyond the generic
    ones of ``core.exceptions.Code`` and the order grid's (``invalid_lot``, ``too_precise``, ...)."""

    PRICE_UNAVAILABLE = "price_unavailable"
    EXPOSURE_LIMIT_EXCEEDED = "exposure_limit_exceeded"
    QUOTE_EXPIRED = "quote_expired"
    QUOTE_ALREADY_EXECUTED = "quote_already_executed"
    QUOTE_REJECTED = "quote_rejected"
    CONVERSION_UNSUPPORTED = "conversion_unsupported"
    SIZE_OR_FUNDS = "size_or_funds"
    SIZE_BELOW_MINIMUM = "size_below_minimum"
    SIZE_ABOVE_MAXIMUM = "size_above_maximum"
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    REFERENCE_REQUIRED = "reference_required"
    REASON_REQUIRED = "reason_required"
    ALREADY_DECIDED = "already_decided"
    FOUR_EYES = "four_eyes"


class PriceUnavailable(Conflict):
    """No price for this size: the book is too thin and operations set no (fresh) fallback price."""

    code = QuoteCode.PRICE_UNAVAILABLE


class ExposureLimitExceeded(Conflict):
    """The trade would take the firm's inventory in an asset beyond its exposure limit (or it has none)."""

    code = QuoteCode.EXPOSURE_LIMIT_EXCEEDED


class QuoteExpired(Conflict):
    code = QuoteCode.QUOTE_EXPIRED


class QuoteAlreadyExecuted(Conflict):
    """The quote was executed already, under another Idempotency-Key."""

    code = QuoteCode.QUOTE_ALREADY_EXECUTED


class QuoteRejected(Conflict):
    """The firm will not honour the quote now: the market is not open, its reference moved against the firm
    beyond the tolerance (or can no longer be priced), or the trade would breach an exposure limit."""

    code = QuoteCode.QUOTE_REJECTED


class ConversionUnsupported(TradingError):
    code = QuoteCode.CONVERSION_UNSUPPORTED
