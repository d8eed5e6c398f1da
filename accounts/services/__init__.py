"""Writes of the accounts domain: client accounts and their users, API keys, funding.

Every state change locks the row it changes, validates the transition (``invalid_transition`` otherwise),
and records an audit row in the same transaction. Repeating a transition that already happened (completing
a completed deposit, revoking a revoked key) is a replay: it returns the object and writes nothing.

The functions live in ``lifecycle``, ``api_keys``, ``funding``, ``withdrawal_controls`` and ``onboarding``; this
package re-exports them, so callers keep writing ``from accounts import services`` and
``services.withdrawal_request(...)``.
"""

from accounts.errors import AccountsError
from accounts.services.api_keys import api_key_create, api_key_matches, api_key_revoke, api_key_signing_secret
from accounts.services.funding import (
    DAILY_WINDOW,
    FUNDING_AUDIT_FIELDS,
    WITHDRAWAL_AUDIT_FIELDS,
    deposit_approve,
    deposit_complete,
    deposit_reject,
    deposit_request,
    withdrawal_approve,
    withdrawal_cancel,
    withdrawal_complete,
    withdrawal_reject,
    withdrawal_request,
)
from accounts.services.lifecycle import (
    ACCOUNT_AUDIT_FIELDS,
    account_activate,
    account_close,
    account_freeze,
    account_require_active,
    account_require_can_trade,
    account_unfreeze,
    account_update,
    asset_limit_set,
    client_account_create,
    client_user_add,
    client_user_role_set,
    kyc_status_set,
)
from accounts.services.onboarding import (
    MONEY_SCOPES,
    LinkDelivery,
    api_key_issue,
    api_key_request_approve,
    api_key_request_propose,
    api_key_request_reject,
    client_user_deactivate,
    client_user_invite,
    client_user_reactivate,
    key_needs_dual_control,
    password_link_send,
)
from accounts.services.withdrawal_controls import (
    withdrawal_destination_add,
    withdrawal_destination_remove,
    withdrawal_four_eyes_due,
    withdrawal_needs_four_eyes,
)

__all__ = [
    "MONEY_SCOPES",
    "LinkDelivery",
    "api_key_issue",
    "api_key_request_approve",
    "api_key_request_propose",
    "api_key_request_reject",
    "client_user_deactivate",
    "client_user_invite",
    "client_user_reactivate",
    "key_needs_dual_control",
    "password_link_send",
    "ACCOUNT_AUDIT_FIELDS",
    "DAILY_WINDOW",
    "FUNDING_AUDIT_FIELDS",
    "WITHDRAWAL_AUDIT_FIELDS",
    "AccountsError",
    "account_activate",
    "account_close",
    "account_freeze",
    "account_require_active",
    "account_require_can_trade",
    "account_unfreeze",
    "account_update",
    "api_key_create",
    "api_key_matches",
    "api_key_revoke",
    "api_key_signing_secret",
    "asset_limit_set",
    "client_account_create",
    "client_user_add",
    "client_user_role_set",
    "deposit_approve",
    "deposit_complete",
    "deposit_reject",
    "deposit_request",
    "kyc_status_set",
    "withdrawal_approve",
    "withdrawal_cancel",
    "withdrawal_complete",
    "withdrawal_destination_add",
    "withdrawal_destination_remove",
    "withdrawal_four_eyes_due",
    "withdrawal_needs_four_eyes",
    "withdrawal_reject",
    "withdrawal_request",
]
