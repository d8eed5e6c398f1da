"""A client's own trading controls (README "Pre-trade risk"): the kill switch and the dead-man switch.

- **Kill switch**: engaging it cancels every open order of the account (holds released) and refuses new ones
  (``kill_switch_engaged``) until it is released. Operations (``trading.kill_switch``, console "Client trading
  controls") or an admin of the client account (``POST /api/v1/kill-switch/``) engage it; a client's admin may
  release only a switch the client engaged (``kill_switch_held_by_operations``). Each change is audited and
  written as a ``kill_switch.engaged`` / ``kill_switch.released`` event.
  It also refuses quotes and conversions (``kill_switch_require_off``).
- **Dead-man switch** (cancel-on-disconnect): ``POST /api/v1/orders/cancel-after/ {"timeout": 60}`` arms it;
  unless renewed within ``timeout`` seconds, every open order of the account is cancelled (reason
  ``cancel_after_lapsed``) by the beat's ``trading.tasks.cancel_after_sweep``; ``{"timeout": 0}`` disarms it.

Every change locks the client account's row first, as placing an order does (``trading.sql.placement_reads``):
an order being placed when the switch is engaged is committed first and then cancelled, never left behind.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from accounts.errors import Code as AccountsCode
from accounts.models import ClientAccount, Membership, Role
from audit.services import audit_record, audit_values, user_or_none
from core.exceptions import Code as CoreCode
from core.exceptions import Forbidden
from trading import clock, outbox
from trading.errors import Code, KillSwitchEngaged, TradingError
from trading.models import AccountTradingControl, KillSwitchHolder, Order
from trading.services.cancels import orders_cancel_all

KILL_SWITCH_PERMISSION = "trading.kill_switch"
KILL_SWITCH = "kill_switch"
CANCEL_AFTER_LAPSED = "cancel_after_lapsed"
CANCEL_AFTER_MIN_SECONDS = 5  # the beat checks every second: a shorter timer would mostly measure the beat
CANCEL_AFTER_MAX_SECONDS = 86400
CANCEL_AFTER_SWEEP_BATCH = 100
AUDIT_FIELDS = ["kill_switch", "kill_switch_by", "kill_switch_reason", "cancel_after", "cancel_after_timeout"]


def _holder(acting_user, account: ClientAccount) -> str:
    """Who acts: an admin of this client account (``client``), or operations (staff with the permission, or
    the system). Anyone else is refused."""
    user = user_or_none(acting_user)
    if user is None:
        return KillSwitchHolder.OPERATIONS
    membership = Membership.objects.filter(user=user).first()
    if membership is not None:
        if membership.account_id != account.pk or membership.role != Role.ADMIN:
            raise Forbidden("Only an admin of the account can engage or release its kill switch.",
                            code=AccountsCode.ACCOUNT_ADMIN_REQUIRED)
        return KillSwitchHolder.CLIENT
    if not (user.is_active and user.has_perm(KILL_SWITCH_PERMISSION)):
        raise Forbidden("You do not have permission to engage or release a client's kill switch.",
                        code=CoreCode.PERMISSION_DENIED)
    return KillSwitchHolder.OPERATIONS


def _control_locked(account: ClientAccount) -> AccountTradingControl:
    """The account's controls, created if new, with the account's row locked as placing an order locks it."""
    ClientAccount.objects.select_for_update(no_key=True).filter(pk=account.pk).values_list("pk").get()
    AccountTradingControl.objects.get_or_create(account=account)
    return AccountTradingControl.objects.select_for_update(no_key=True).get(account=account)


def trading_control_of(*, account: ClientAccount) -> AccountTradingControl | None:
    return AccountTradingControl.objects.filter(account=account).first()


def kill_switch_require_off(*, account: ClientAccount) -> None:
    """Refuse quotes and conversions while the kill switch is engaged (placement reads it with its other reads,
    ``trading.sql.placement_reads``)."""
    if AccountTradingControl.objects.filter(account=account, kill_switch=True).exists():
        raise KillSwitchEngaged("Your kill switch is engaged: no new trades until it is released.")


@transaction.atomic
def kill_switch_engage(*, account: ClientAccount, acting_user, reason: str = "") -> AccountTradingControl:
    """Cancel every open order of the account and refuse new ones. Engaging an engaged switch cancels again
    (nothing, normally) and changes nothing else, except that operations take over a client's switch, which
    the client then can no longer release."""
    holder = _holder(acting_user, account)
    control = _control_locked(account)
    before = audit_values(control, AUDIT_FIELDS)
    takes_over = control.kill_switch and holder == KillSwitchHolder.OPERATIONS \
        and control.kill_switch_by == KillSwitchHolder.CLIENT
    if not control.kill_switch or takes_over:
        control.kill_switch, control.kill_switch_by = True, holder
        control.kill_switch_reason, control.kill_switch_at = (reason or "").strip()[:500], clock.now()
        control.save()
        audit_record(acting_user=acting_user, action="kill_switch.engage", obj=control, account=account,
                     before=before, after=audit_values(control, AUDIT_FIELDS))
        outbox.kill_switch_changed(control)
    orders_cancel_all(account=account, acting_user=acting_user, reason=KILL_SWITCH)
    return control


@transaction.atomic
def kill_switch_release(*, account: ClientAccount, acting_user, reason: str = "") -> AccountTradingControl:
    """Accept orders again. A client's admin cannot release a switch operations engaged."""
    holder = _holder(acting_user, account)
    control = _control_locked(account)
    if not control.kill_switch:
        return control
    if control.kill_switch_by == KillSwitchHolder.OPERATIONS and holder != KillSwitchHolder.OPERATIONS:
        raise Forbidden("Operations engaged this kill switch: only operations can release it.",
                        code=Code.KILL_SWITCH_HELD_BY_OPERATIONS)
    before = audit_values(control, AUDIT_FIELDS)
    control.kill_switch, control.kill_switch_by = False, ""
    control.kill_switch_reason, control.kill_switch_at = (reason or "").strip()[:500], clock.now()
    control.save()
    audit_record(acting_user=acting_user, action="kill_switch.release", obj=control, account=account,
                 before=before, after=audit_values(control, AUDIT_FIELDS))
    outbox.kill_switch_changed(control)
    return control


@transaction.atomic
def cancel_after_set(*, account: ClientAccount, timeout: int, acting_user) -> AccountTradingControl:
    """Arm or renew the dead-man switch: every open order is cancelled ``timeout`` seconds from now unless this
    is called again before. ``timeout`` 0 disarms it. Arming and disarming are audited, renewals are not."""
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not (
            timeout == 0 or CANCEL_AFTER_MIN_SECONDS <= timeout <= CANCEL_AFTER_MAX_SECONDS):
        raise TradingError(f"timeout is 0 (off) or {CANCEL_AFTER_MIN_SECONDS} to {CANCEL_AFTER_MAX_SECONDS} "
                           "seconds.", code=Code.INVALID_TIMEOUT, field="timeout")
    control = _control_locked(account)
    was_armed = control.cancel_after is not None
    before = audit_values(control, AUDIT_FIELDS)
    control.cancel_after = clock.now() + timedelta(seconds=timeout) if timeout else None
    control.cancel_after_timeout = timeout or None
    control.save(update_fields=["cancel_after", "cancel_after_timeout", "updated_at"])
    if was_armed != bool(timeout):
        audit_record(acting_user=acting_user, action="cancel_after.arm" if timeout else "cancel_after.disarm",
                     obj=control, account=account, before=before, after=audit_values(control, AUDIT_FIELDS))
    return control


def cancel_after_lapsed(*, now: datetime | None = None) -> list[int]:
    """Accounts whose dead-man switch has lapsed, oldest deadline first (at most a sweep's batch)."""
    now = now or clock.now()
    return list(AccountTradingControl.objects.filter(cancel_after__lte=now).order_by("cancel_after")
                .values_list("account_id", flat=True)[:CANCEL_AFTER_SWEEP_BATCH])


@transaction.atomic
def cancel_after_fire(*, account_id: int, now: datetime | None = None) -> list[Order] | None:
    """Cancel every open order of an account whose dead-man switch has lapsed, and disarm it; returns the
    cancelled orders. Does nothing (None) if the client renewed or disarmed it meanwhile (decided under the
    account's lock)."""
    now = now or clock.now()
    account = ClientAccount.objects.filter(pk=account_id).first()
    if account is None:
        return None
    control = _control_locked(account)
    if control.cancel_after is None or control.cancel_after > now:
        return None
    before = audit_values(control, AUDIT_FIELDS)
    control.cancel_after, control.cancel_after_timeout = None, None
    control.save(update_fields=["cancel_after", "cancel_after_timeout", "updated_at"])
    audit_record(acting_user=None, action="cancel_after.lapse", obj=control, account=account, before=before,
                 after=audit_values(control, AUDIT_FIELDS))
    return orders_cancel_all(account=account, acting_user=None, reason=CANCEL_AFTER_LAPSED)
