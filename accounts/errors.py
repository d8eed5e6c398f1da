"""Error codes of the accounts domain. Each is a stable, documented ``code`` rendered by the API handler."""

from core.exceptions import Conflict, DomainError, Forbidden


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
