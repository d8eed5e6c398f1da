"""Writes of the trading domain: placing and cancelling orders, market status, and the matcher's batch.

Serialisation per market is a PostgreSQL advisory lock (``trading.sql.LOCK_NAMESPACE``, market id), held for one
transaction: the matcher *tries* it (a worker that finds it taken re-queues the wake-up instead of waiting);
cancels and status changes *wait* for it, so they never interleave with a batch that is matching the same
orders. Placing an order takes no market lock: it only inserts a ``new`` row and a hold.
"""

from trading.services.amends import order_amend
from trading.services.batches import ORDER_BATCH_MAX, orders_place_batch
from trading.services.cancels import CANCELLED_BY_OPERATIONS, USER_REQUESTED, order_cancel, orders_cancel_all
from trading.services.candles import BackfillSummary, candles_backfill
from trading.services.controls import (
    cancel_after_set,
    kill_switch_engage,
    kill_switch_release,
    trading_control_of,
)
from trading.services.markets import market_status_set
from trading.services.matcher import MatchSummary, market_match
from trading.services.parameters import (
    MARKET_FIELDS,
    RISK_FIELDS,
    parameter_change_approve,
    parameter_change_propose,
    parameter_change_reject,
)
from trading.services.placement import OrderParams, order_place
from trading.services.settlement import BatchSettlement
from trading.sql import LOCK_NAMESPACE

__all__ = [
    "CANCELLED_BY_OPERATIONS",
    "LOCK_NAMESPACE",
    "MARKET_FIELDS",
    "ORDER_BATCH_MAX",
    "RISK_FIELDS",
    "USER_REQUESTED",
    "BackfillSummary",
    "BatchSettlement",
    "MatchSummary",
    "OrderParams",
    "candles_backfill",
    "cancel_after_set",
    "kill_switch_engage",
    "kill_switch_release",
    "market_match",
    "market_status_set",
    "order_amend",
    "order_cancel",
    "order_place",
    "orders_cancel_all",
    "orders_place_batch",
    "parameter_change_approve",
    "parameter_change_propose",
    "parameter_change_reject",
    "trading_control_of",
]
