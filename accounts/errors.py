"""Error codes of the accounts domain. Each is a stable, documented ``code`` rendered by the API handler."""

from enum import StrEnum

from core.exceptions import Conflict, DomainError, Forbidden


class Code(StrEnum):
    """Every code the accounts app raises beyond the generic ones of ``core.exceptions.Code``."""

    ACCOUNTS_ERROR = "accounts_error"
    INVALID_TRANSITION = "invalid_transition"
    # The account and its users.
    ACCOUNT_NOT_EMPTY = "account_not_empty"
    ACCOUNT_NOT_ACTIVE = "account_not_active"
    ACCOUNT_FROZEN = "account_frozen"
    ACCOUNT_CLOSED = "account_closed"
    KYC_NOT_APPROVED = "kyc_not_approved"
    TRADING_DISABLED = "trading_disabled"
    KYC_APPROVER_REQUIRED = "kyc_approver_required"
    USERNAME_TAKEN = "username_taken"
    NO_CLIENT_ACCOUNT = "no_client_account"
    # API keys: creating them, authenticating with them, and the scopes they grant.
    INVALID_SCOPE = "invalid_scope"
    SCOPE_NOT_ALLOWED = "scope_not_allowed"
    SCOPE_REQUIRED = "scope_required"
    INVALID_IP = "invalid_ip"
    IP_ALLOW_LIST_REQUIRED = "ip_allow_list_required"
    # Every failed API-key credential (unknown key, wrong secret, revoked, expired, inactive user, refused IP,
    # missing, stale or wrong signature) answers this one code, so a response tells an attacker nothing.
    INVALID_API_KEY = "invalid_api_key"
    INVALID_TOKEN = "invalid_token"
    AUTHENTICATION_THROTTLED = "authentication_throttled"
    API_KEY_LIMIT_REACHED = "api_key_limit_reached"
    INVALID_EXPIRY = "invalid_expiry"
    # Funding.
    UNKNOWN_ASSET = "unknown_asset"
    NOT_POSITIVE = "not_positive"
    DESTINATION_REQUIRED = "destination_required"
    WITHDRAWALS_DISABLED = "withdrawals_disabled"
    DAILY_LIMIT_EXCEEDED = "daily_limit_exceeded"
    FOUR_EYES = "four_eyes"
    APPROVER_REQUIRED = "approver_required"
    SECOND_APPROVER_REQUIRED = "second_approver_required"
    SELF_APPROVAL = "self_approval"
    SECOND_PERSON_REQUIRED = "second_person_required"
    REFERENCE_REQUIRED = "reference_required"
    DEPOSIT_NOTICE_TOO_LARGE = "deposit_notice_too_large"
    # The withdrawal address book.
    DESTINATION_NOT_ALLOWED = "destination_not_allowed"
    DESTINATION_COOLING_OFF = "destination_cooling_off"
    ACCOUNT_ADMIN_REQUIRED = "account_admin_required"
    # Idempotent requests (the header of the API, the key of a funding request).
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    # Client onboarding (``accounts.services.onboarding``).
    EMAIL_REQUIRED = "email_required"
    INVALID_EMAIL = "invalid_email"
    NOT_A_MEMBER = "not_a_member"
    USER_INACTIVE = "user_inactive"
    DUAL_CONTROL_REQUIRED = "dual_control_required"
    ALREADY_DECIDED = "already_decided"
    REASON_REQUIRED = "reason_required"


class AccountsError(DomainError):
    code = Code.ACCOUNTS_ERROR


class InvalidTransition(Conflict):
    """The object is not in a state this action can start from (e.g. completing a rejected withdrawal)."""

    code = Code.INVALID_TRANSITION


class AccountNotEmpty(Conflict):
    code = Code.ACCOUNT_NOT_EMPTY


class AccountNotOperational(Forbidden):
    """The account's status, KYC or permissions refuse the operation; the code names which."""

    code = Code.ACCOUNT_NOT_ACTIVE


class FourEyesViolation(Forbidden):
    code = Code.FOUR_EYES


class LimitExceeded(DomainError):
    code = Code.DAILY_LIMIT_EXCEEDED
