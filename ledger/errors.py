from enum import StrEnum

from core.exceptions import Conflict, DomainError


class Code(StrEnum):
    """Every error code the ledger gives (its services, money helpers, snapshots and API fields). The generic ones
    (invalid, not_found, conflict, permission_denied, ...) are ``core.exceptions.Code``."""

    LEDGER_ERROR = "ledger_error"
    UNBALANCED_ENTRY = "unbalanced_entry"
    INVALID_AMOUNT = "invalid_amount"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    INVALID_KEY = "invalid_key"
    INVALID_ACCOUNT = "invalid_account"
    UNKNOWN_ASSET = "unknown_asset"
    HOLD_EXCEEDED = "hold_exceeded"
    INVALID_CAPTURE = "invalid_capture"
    INVALID_REVERSAL = "invalid_reversal"
    # Manual adjustments under maker-checker.
    FOUR_EYES = "four_eyes"
    ALREADY_DECIDED = "already_decided"
    REASON_REQUIRED = "reason_required"
    # End-of-day snapshots.
    DAY_NOT_OVER = "day_not_over"
    # Amounts and dates as clients send them (ledger.money, ledger.serializers, ledger.dates).
    DECIMAL_STRING_REQUIRED = "decimal_string_required"
    MALFORMED_DECIMAL = "malformed_decimal"
    NOT_POSITIVE = "not_positive"
    NEGATIVE = "negative"
    TOO_PRECISE = "too_precise"
    TOO_LARGE = "too_large"
    OUT_OF_RANGE = "out_of_range"


class LedgerError(DomainError):
    code = Code.LEDGER_ERROR


class UnbalancedEntry(LedgerError):
    code = Code.UNBALANCED_ENTRY


class InvalidAmount(LedgerError):
    code = Code.INVALID_AMOUNT


class InsufficientFunds(LedgerError):
    code = Code.INSUFFICIENT_FUNDS


class IdempotencyConflict(Conflict):
    code = Code.IDEMPOTENCY_CONFLICT
