"""Error codes of the trading domain, each a stable ``code`` the API renders as ``{"code","message","field"}``."""

from core.exceptions import Conflict, DomainError


class TradingError(DomainError):
    code = "trading_error"


class InvalidOrder(TradingError):
    """The order itself is malformed or off the market's grid; the code says how (``invalid_tick`` ...)."""

    code = "invalid_order"


class MarketNotOpen(Conflict):
    code = "market_not_open"


class OrderNotOpen(Conflict):
    """The order is already filled, cancelled or rejected."""

    code = "order_not_open"


class OrderConflict(Conflict):
    """The client order id was used before for an order with other parameters."""

    code = "client_order_id_conflict"


class MarketMisconfigured(TradingError):
    """tick x lot x fee rate would need more than the 18 decimal places the ledger stores exactly."""

    code = "market_misconfigured"


# --- quotes, inventory and conversions ----------------------------------------------------------------------


class PriceUnavailable(Conflict):
    """No price for this size: the book is too thin and operations set no (fresh) fallback price."""

    code = "price_unavailable"


class ExposureLimitExceeded(Conflict):
    """The trade would take the firm's inventory in an asset beyond its exposure limit (or it has none)."""

    code = "exposure_limit_exceeded"


class QuoteExpired(Conflict):
    code = "quote_expired"


class QuoteAlreadyExecuted(Conflict):
    """The quote was executed already, under another Idempotency-Key."""

    code = "quote_already_executed"


class QuoteRejected(Conflict):
    """The firm will not honour the quote now: the market is not open, its reference moved against the firm
    beyond the tolerance (or can no longer be priced), or the trade would breach an exposure limit."""

    code = "quote_rejected"


class ConversionUnsupported(TradingError):
    code = "conversion_unsupported"
