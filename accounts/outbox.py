"""The events the accounts domain writes, in the transaction of the change (README "Events"): deposit and
withdrawal state changes (with the withdrawal's hold placed or released), account status changes, API keys
created and revoked. One INSERT per call."""

from __future__ import annotations

from accounts.models import ApiKey, ClientAccount, Deposit, FundingStatus, Withdrawal
from accounts.representations import account_data, api_key_data, funding_data
from events.services import NewEvent, events_record
from events.types import EventType
from ledger.models import HoldStatus
from ledger.representations import hold_data


def state_changed(obj, *, before_status: str | None) -> None:
    """``obj`` (a deposit, withdrawal or client account) was saved; record its new status if it changed
    (``before_status`` None: just created)."""
    if obj.status == before_status:
        return
    if isinstance(obj, ClientAccount):
        events_record([NewEvent(EventType.ACCOUNT_STATUS_CHANGED, obj.pk, account_data(obj))])
    elif isinstance(obj, (Deposit, Withdrawal)):
        events_record(_funding_events(obj))


def _funding_events(request) -> list[NewEvent]:
    kind = "deposit" if isinstance(request, Deposit) else "withdrawal"
    events = [NewEvent(EventType(f"{kind}.{request.status}"), request.account_id, funding_data(request))]
    hold = getattr(request, "hold", None) if kind == "withdrawal" else None
    if hold is not None and request.status == FundingStatus.REQUESTED and hold.status == HoldStatus.ACTIVE:
        events.append(NewEvent(EventType.HOLD_PLACED, request.account_id, hold_data(hold)))
    elif hold is not None and request.status in (FundingStatus.REJECTED, FundingStatus.CANCELLED) \
            and hold.status == HoldStatus.RELEASED:
        events.append(NewEvent(EventType.HOLD_RELEASED, request.account_id, hold_data(hold, released=hold.amount)))
    return events


def api_key_changed(key: ApiKey) -> None:
    kind = EventType.API_KEY_REVOKED if key.revoked_at else EventType.API_KEY_CREATED
    events_record([NewEvent(kind, key.account_id, api_key_data(key))])
