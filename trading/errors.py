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
