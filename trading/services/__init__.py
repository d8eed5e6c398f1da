"""Writes of the trading domain: placing and cancelling orders, market status, and the matcher's batch.

Serialisation per market is a PostgreSQL advisory lock (``trading.sql.LOCK_NAMESPACE``, market id), held for one
transaction: the matcher *tries* it (a worker that finds it taken re-queues the wake-up instead of waiting);
cancels and status changes *wait* for it, so they never interleave with a batch that is matching the same
orders. Placing an order takes no market lock: it only inserts a ``new`` row and a hold.
"""

from trading.services.amends import order_amend
from trading.services.cancels import CANCELLED_BY_OPERATIONS, USER_REQUESTED, order_cancel, orders_cancel_all
from trading.services.markets import market_status_set
from trading.services.matcher import MatchSummary, market_match
from trading.services.parameters import parameter_change_approve, parameter_change_propose, parameter_change_reject
from trading.services.placement import OrderParams, order_place
from trading.services.settlement import BatchSettlement
from trading.sql import LOCK_NAMESPACE

__all__ = [
    "CANCELLED_BY_OPERATIONS",
    "LOCK_NAMESPACE",
    "USER_REQUESTED",
    "BatchSettlement",
    "MatchSummary",
    "OrderParams",
    "market_match",
    "market_status_set",
    "order_amend",
    "order_cancel",
    "order_place",
    "orders_cancel_all",
    "parameter_change_approve",
    "parameter_change_propose",
    "parameter_change_reject",
]
