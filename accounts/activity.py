"""What a client sees of the audit log (``GET /api/v1/audit-log/``): its own actions and their outcomes, never
internal reasons, compliance activity or staff identities (README "Security"). The full audit log stays in the
console.

An allow-list, so anything not named here stays internal, including actions added later until they are listed:
- only the actions in ``CLIENT_ACTIVITY`` are shown (not report exports, reconciliation runs, proposals, staff
  sign-in devices, market or fee changes, an adjustment until it is approved, ...);
- of each, only the listed fields of ``before`` and ``after`` (never who approved, ledger entry or hold ids);
- a ``reason`` someone typed is shown only when one of the client's own users wrote it (a client's own words);
  the reasons staff give (a freeze, a rejection, KYC notes) are not. An order's ``reason`` is an outcome code
  (``user_requested``, ``no_liquidity``, ``settlement_failed``...) and is shown, as on the order itself.
- the actor is one of the client's own users (and key), "operations" for any staff user, or "system".
"""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditLog
from audit.selectors import audit_log_of

ACCOUNT = ("legal_name", "kind", "status", "kyc_status", "tier", "can_trade", "can_withdraw")
FUNDING = ("asset", "amount", "status", "blockchain_address", "tx_hash", "bank_reference")
ORDER = ("market", "client_order_id", "side", "type", "time_in_force", "post_only", "stp", "price", "size", "funds",
         "status", "reason", "filled_size")
API_KEY = ("name", "prefix", "scopes", "allowed_ips", "revoked_at", "expires_at", "signing_required")
QUOTE = ("market", "side", "price", "size", "funds", "quote_amount", "fee", "total", "status", "expires_at")
# The client's trading controls: never ``kill_switch_reason``, which operations may have written.
TRADING_CONTROL = ("kill_switch", "kill_switch_by", "cancel_after", "cancel_after_timeout")

CLIENT_ACTIVITY: dict[str, tuple[str, ...]] = {
    **{f"account.{action}": ACCOUNT
       for action in ("create", "update", "kyc_status_set", "activate", "freeze", "unfreeze", "close")},
    "client_user.add": ("username", "email", "role"),
    "client_user.role_set": ("role",),
    "api_key.create": API_KEY,
    "api_key.revoke": API_KEY,
    "asset_limit.set": ("asset", "max_order_size", "daily_withdrawal_limit"),
    **{f"deposit.{action}": FUNDING for action in ("request", "approve", "complete", "reject")},
    **{f"withdrawal.{action}": FUNDING for action in ("request", "approve", "complete", "reject", "cancel")},
    "order.place": ORDER,
    "order.cancel": ORDER,
    "order.reject": ORDER,
    "order.amend": ("size",),
    **{action: TRADING_CONTROL for action in ("kill_switch.engage", "kill_switch.release", "cancel_after.arm",
                                              "cancel_after.disarm", "cancel_after.lapse")},
    "adjustment.approve": ("asset", "amount", "status"),
    "client_user.deactivate": ("username", "is_active"),
    "client_user.reactivate": ("username", "is_active"),
    **{f"withdrawal_destination.{action}": ("asset", "address", "label", "usable_from", "removed_at")
       for action in ("add", "remove")},
    "quote.create": QUOTE,
    "quote.execute": QUOTE,
    "conversion.create": ("from_asset", "to_asset", "amount"),
    **{f"webhook.{action}": ("url", "event_types", "enabled")
       for action in ("create", "delete", "enable", "disabled")},
}
OWN_WORDS = ("reason",)  # shown when the client's own user wrote them


def client_activity_of(*, account) -> QuerySet[AuditLog]:
    """The account's audit rows a client may see, newest first."""
    return audit_log_of(account=account).filter(action__in=CLIENT_ACTIVITY)


def client_view(entry: AuditLog, values: dict | None, *, by_member: bool) -> dict | None:
    """``values`` (an entry's before or after) as the client sees them."""
    if values is None:
        return None
    shown = CLIENT_ACTIVITY.get(entry.action, ())
    if by_member:
        shown = (*shown, *OWN_WORDS)
    return {name: value for name, value in values.items() if name in shown}
