"""Fee-rate and market-parameter changes under four eyes: one staff user proposes, another approves, and only the
approval applies the change (README "Security"). The proposer can never decide their own proposal, in the service
and by a database check; rates are bounded (0 to ``MAX_FEE_RATE``) here with a code and by the database.

What may change: a market's ``maker_fee_rate``, ``taker_fee_rate``, ``min_size`` and ``max_size`` (its assets,
tick and lot are fixed once orders may rest on it), its pre-trade risk limits (``RISK_FIELDS``, README "Pre-trade
risk"; ``None`` as a value removes a limit), and a tier's fee schedule on one market or on all of them.
A market's status (halt, cancel-only, reopen) is not a parameter: halting must stay a one-person emergency stop.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from accounts.models import Tier
from audit.services import audit_record, audit_values
from core.exceptions import Code as CoreCode
from core.exceptions import Conflict, Forbidden
from core.validation import require_choice
from trading.errors import Code, ParameterError
from trading.fill_amounts import decimal_places
from trading.models import MAX_COLLAR_BPS, MAX_FEE_RATE, FeeSchedule, Market, ParameterChange, ParameterChangeStatus

PROPOSE = "trading.add_parameterchange"
APPROVE = "trading.approve_parameterchange"
FEE_FIELDS = ("maker_fee_rate", "taker_fee_rate")
RISK_FIELDS = ("price_collar_bps", "max_market_order_notional", "max_limit_order_notional", "max_daily_notional",
               "max_open_orders")
MARKET_FIELDS = (*FEE_FIELDS, "min_size", "max_size", *RISK_FIELDS)
BPS_DECIMALS = 4
RATE_DECIMALS = 8
AUDIT_FIELDS = ["market", "tier", "values", "before", "reason", "status", "proposed_by", "decided_by"]


def _require_permission(acting_user, perm: str, doing: str) -> None:
    if acting_user is None or not getattr(acting_user, "is_active", False) or not acting_user.has_perm(perm):
        raise Forbidden(f"You do not have permission to {doing}.", code=CoreCode.PERMISSION_DENIED)


def _require_four_eyes(change: ParameterChange, acting_user) -> None:
    if change.proposed_by_id == acting_user.pk:
        raise Forbidden("Four-eyes rule: the proposer of a change cannot approve or reject it.", code=Code.FOUR_EYES)


def _decision_start(change: ParameterChange, acting_user, verb: str, outcome: str) -> tuple[ParameterChange, bool]:
    """Lock the proposal for a decision by someone else than its proposer; (it, True) when it already has
    ``outcome`` (a replay), a conflict when it has the other one."""
    _require_permission(acting_user, APPROVE, f"{verb} fee-rate or market-parameter changes")
    change = ParameterChange.objects.select_for_update(no_key=True).get(pk=change.pk)
    _require_four_eyes(change, acting_user)
    if change.status == outcome:
        return change, True
    if change.status != ParameterChangeStatus.PROPOSED:
        raise Conflict(f"Change #{change.pk} was already {change.status}.", code=Code.ALREADY_DECIDED)
    return change, False


def _decimal(name: str, value) -> Decimal:
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        result = None
    if isinstance(value, (float, bool)) or result is None or not result.is_finite():
        raise ParameterError(f"{value!r} is not a decimal number.", field=name)
    return result


def _checked(market: Market | None, tier: str, values: dict) -> dict[str, Decimal | None]:
    """``values`` as decimals, every one allowed and in bounds for its target; raises ``ParameterError``.
    ``None`` skips a field, except a risk limit, which it removes (kept as ``None``)."""
    allowed = FEE_FIELDS if tier else MARKET_FIELDS
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ParameterError(f"{', '.join(unknown)} cannot be changed here; one of {', '.join(allowed)}.",
                             field=unknown[0])
    checked = {name: None if value is None else _decimal(name, value) for name, value in values.items()
               if value is not None or name in RISK_FIELDS}
    if not checked:
        raise ParameterError("Name at least one new value.", code=CoreCode.REQUIRED)
    for name in FEE_FIELDS:
        rate = checked.get(name)
        if rate is not None and not 0 <= rate <= MAX_FEE_RATE:
            raise ParameterError(f"A fee rate must be between 0 and {MAX_FEE_RATE} (5%), not {rate}.",
                                 code=Code.FEE_RATE_OUT_OF_RANGE, field=name)
        if rate is not None and decimal_places(rate) > RATE_DECIMALS:
            raise ParameterError(f"A fee rate has at most {RATE_DECIMALS} decimal places.", code=Code.TOO_PRECISE,
                                 field=name)
    if not tier:
        _sizes_check(market, checked)
        _risk_limits_check(checked)
    return checked


def _risk_limits_check(checked: dict[str, Decimal | None]) -> None:
    for name in RISK_FIELDS:
        value = checked.get(name)
        if value is None:
            continue
        if value <= 0:
            raise ParameterError("A risk limit is greater than zero (remove it instead).", code=Code.NOT_POSITIVE,
                                 field=name)
        if name == "price_collar_bps" and (value > MAX_COLLAR_BPS or decimal_places(value) > BPS_DECIMALS):
            raise ParameterError(f"A price collar is at most {MAX_COLLAR_BPS} bps (100%), with at most "
                                 f"{BPS_DECIMALS} decimal places.", field=name)
        if name == "max_open_orders" and value != value.to_integral_value():
            raise ParameterError("The open-order cap is a whole number.", field=name)


def _sizes_check(market: Market, checked: dict[str, Decimal]) -> None:
    min_size = checked.get("min_size", market.min_size)
    max_size = checked.get("max_size", market.max_size)
    for name, size in (("min_size", min_size), ("max_size", max_size)):
        if size <= 0:
            raise ParameterError("Sizes must be greater than zero.", code=Code.NOT_POSITIVE, field=name)
        if size % market.lot_size != 0:
            raise ParameterError(f"Sizes must be multiples of the lot size {market.lot_size.normalize()}.",
                                 code=Code.INVALID_LOT, field=name)
    if max_size < min_size:
        raise ParameterError("The maximum size cannot be below the minimum size.", field="max_size")


def _current(market: Market | None, tier: str) -> dict[str, str] | None:
    """What the target's values are now (None: a fee schedule that does not exist yet)."""
    if not tier:
        return {name: _text(getattr(market, name)) for name in MARKET_FIELDS}
    schedule = FeeSchedule.objects.filter(tier=tier, market=market).first()
    return {name: str(getattr(schedule, name)) for name in FEE_FIELDS} if schedule else None


def _text(value) -> str | None:
    return None if value is None else str(value)


@transaction.atomic
def parameter_change_propose(*, market: Market | None, tier: str = "", values: dict, reason: str,
                             acting_user) -> ParameterChange:
    """Record a proposed change; nothing changes until another staff user approves it.

    ``tier`` set: that tier's fee schedule on ``market`` (all markets when ``market`` is None), which needs both
    rates when it does not exist yet. ``tier`` empty: the market's own ``MARKET_FIELDS``.
    """
    _require_permission(acting_user, PROPOSE, "propose fee-rate or market-parameter changes")
    if tier:
        require_choice(tier, Tier, field="tier", error=ParameterError)
    elif market is None:
        raise ParameterError("Name the market to change (or a tier for a fee schedule).", code=CoreCode.REQUIRED,
                             field="market")
    checked = _checked(market, tier, values)
    before = _current(market, tier)
    if tier and before is None and set(checked) != set(FEE_FIELDS):
        raise ParameterError("A new fee schedule needs both the maker and the taker rate.", code=CoreCode.REQUIRED,
                             field="maker_fee_rate" if "maker_fee_rate" not in checked else "taker_fee_rate")
    reason = (reason or "").strip()
    if not reason:
        raise ParameterError("Say why the change is needed.", code=Code.REASON_REQUIRED, field="reason")
    change = ParameterChange.objects.create(
        market=market, tier=tier, values={name: _text(value) for name, value in checked.items()}, before=before,
        reason=reason[:500], proposed_by=acting_user,
    )
    audit_record(acting_user=acting_user, action="parameter_change.propose", obj=change,
                 after=audit_values(change, AUDIT_FIELDS))
    return change


@transaction.atomic
def parameter_change_approve(*, change: ParameterChange, acting_user) -> ParameterChange:
    """Approve someone else's proposal and apply it, checked again against the target as it is now. Approving
    again changes nothing. A market's new values apply to orders placed from the next one (an order keeps the
    rates it was placed with)."""
    change, decided = _decision_start(change, acting_user, "approve", ParameterChangeStatus.APPROVED)
    if decided:
        return change
    if change.tier:
        target, before = _fee_schedule_apply(change)
    else:
        target, before = _market_apply(change)
    audit_record(acting_user=acting_user, action=f"{target._meta.model_name}.change", obj=target, before=before,
                 after={**audit_values(target), "parameter_change": change.pk})
    change.status, change.decided_by, change.decided_at = ParameterChangeStatus.APPROVED, acting_user, timezone.now()
    change.save(update_fields=["status", "decided_by", "decided_at"])
    audit_record(acting_user=acting_user, action="parameter_change.approve", obj=change,
                 before={"status": ParameterChangeStatus.PROPOSED}, after=audit_values(change, AUDIT_FIELDS))
    return change


def _market_apply(change: ParameterChange) -> tuple[Market, dict]:
    market = Market.objects.select_for_update(no_key=True).get(pk=change.market_id)
    checked = _checked(market, "", change.values)
    before = audit_values(market)
    for name, value in checked.items():
        setattr(market, name, int(value) if name == "max_open_orders" and value is not None else value)
    market.save(update_fields=[*checked, "updated_at"])  # updated_at: web processes reload their cached market
    return market, before


def _fee_schedule_apply(change: ParameterChange) -> tuple[FeeSchedule, dict | None]:
    checked = _checked(change.market, change.tier, change.values)
    schedule = FeeSchedule.objects.select_for_update(no_key=True).filter(
        tier=change.tier, market_id=change.market_id).first()
    if schedule is None:
        if set(checked) != set(FEE_FIELDS):
            raise ParameterError("A new fee schedule needs both the maker and the taker rate.",
                                 code=CoreCode.REQUIRED)
        return FeeSchedule.objects.create(tier=change.tier, market_id=change.market_id, **checked), None
    before = audit_values(schedule)
    for name, value in checked.items():
        setattr(schedule, name, value)
    schedule.save(update_fields=list(checked))
    return schedule, before


@transaction.atomic
def parameter_change_reject(*, change: ParameterChange, acting_user, reason: str) -> ParameterChange:
    """Turn a proposal down; nothing changes. Rejecting again changes nothing."""
    change, decided = _decision_start(change, acting_user, "reject", ParameterChangeStatus.REJECTED)
    if decided:
        return change
    reason = (reason or "").strip()
    if not reason:
        raise ParameterError("Say why the change is rejected.", code=Code.REASON_REQUIRED, field="reason")
    change.status, change.decided_by, change.decided_at = ParameterChangeStatus.REJECTED, acting_user, timezone.now()
    change.decision_reason = reason[:500]
    change.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
    audit_record(acting_user=acting_user, action="parameter_change.reject", obj=change,
                 before={"status": ParameterChangeStatus.PROPOSED}, after=audit_values(change, AUDIT_FIELDS))
    return change
