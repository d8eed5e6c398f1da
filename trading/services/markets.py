"""A market's status: open, limit-only, post-only, halted or cancel-only."""

from __future__ import annotations

from django.db import transaction

from audit.services import audit_record
from core.exceptions import Code as GenericCode
from core.exceptions import Forbidden
from core.validation import require_choice
from trading import outbox, sql
from trading.errors import InvalidOrder
from trading.models import TRADING_STATUSES, Market, MarketStatus
from trading.wakeups import market_wake_on_commit


@transaction.atomic
def market_status_set(*, market: Market, status: str, acting_user, reason: str = "") -> Market:
    """Open, halt or set a market cancel-only, limit-only or post-only. Waits for a running batch, so once this
    commits no order of a halted market is matched; reopening (to any trading status) wakes the matcher for the
    orders that waited. Limit-only and post-only markets keep matching; placement refuses the other orders."""
    require_choice(status, MarketStatus.values, field="status", error=InvalidOrder)
    if acting_user is not None and not acting_user.has_perm("trading.halt_market"):
        raise Forbidden("You do not have permission to change a market's status.",
                        code=GenericCode.PERMISSION_DENIED)
    sql.market_lock(market.pk, wait=True)
    market = Market.objects.select_for_update(no_key=True).get(pk=market.pk)
    before = {"status": market.status}
    market.status = status
    market.save(update_fields=["status", "updated_at"])
    audit_record(acting_user=acting_user, action="market.status_set", obj=market, before=before,
                 after={"status": status, "reason": reason})
    outbox.market_status_changed(market)
    if status in TRADING_STATUSES:
        market_wake_on_commit(market.pk)
    return market
