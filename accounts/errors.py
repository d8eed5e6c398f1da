"""Error codes of the accounts domain. Each is a stable, documented ``code`` rendered by the API handler."""

from enum import StrEnum

from core.exceptions import Conflict, DomainError, Forbidden


class Code(StrEnum):
    """Codes of client onboarding (``accounts.onboarding``) and the ones it shares with the other services."""

    EMAIL_REQUIRED = "email_required"
    INVALID_EMAIL = "invalid_email"
    USER_INACTIVE = "user_inactive"
    NO_CLIENT_ACCOUNT = "no_client_account"
    NOT_A_MEMBER = "not_a_member"
    INVALID_SCOPE = "invalid_scope"
    SCOPE_NOT_ALLOWED = "scope_not_allowed"
    SCOPE_REQUIRED = "scope_required"
    DUAL_CONTROL_REQUIRED = "dual_control_required"
    FOUR_EYES = "four_eyes"
    SELF_APPROVAL = "self_approval"
    ALREADY_DECIDED = "already_decided"
    REASON_REQUIRED = "reason_required"
    ACCOUNT_CLOSED = "account_closed"
    USERNAME_TAKEN = "username_taken"


class AccountsError(DomainError):
    code = "accounts_error"


class InvalidTransition(Conflict):
    """The object is not in a state this action can start from (e.g. completing a rejected withdrawal)."""

    code = "invalid_transition"


class AccountNotEmpty(Conflict):
    code = "account_not_empty"


class AccountNotOperational(Forbidden):
    """The account's status, KYC or permissions refuse the operation; the code names which."""

    code = "account_not_active"


class FourEyesViolation(Forbidden):
    code = "four_eyes"


class LimitExceeded(DomainError):
    code = "daily_limit_exceeded"
