"""The base of every domain error. Services raise ``DomainError`` subclasses with a stable machine-readable
``code``; ``core.api.errors`` renders them, so this module imports nothing from DRF."""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Generic error codes: the bases below, the API kit's own, and the ones Django REST framework's parsers,
    authentication, throttling and field validation give. Each app lists its own codes in ``<app>/errors.py``."""

    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PERMISSION_DENIED = "permission_denied"
    IMMUTABLE_RECORD = "immutable_record"
    UNKNOWN_FIELD = "unknown_field"
    INVALID_CURSOR = "invalid_cursor"
    SERVER_ERROR = "server_error"
    # Answered for API paths before a view runs, or when Django itself refuses a request (core.api.middleware).
    BAD_HOST = "bad_host"
    BAD_REQUEST = "bad_request"
    REQUEST_TOO_LARGE = "request_too_large"
    CSRF_FAILED = "csrf_failed"
    MALFORMED_MULTIPART = "malformed_multipart"
    # A dependency (the database) is unreachable or restarting: retry after the Retry-After header.
    SERVICE_UNAVAILABLE = "service_unavailable"
    # Django REST framework's request handling.
    PARSE_ERROR = "parse_error"
    NOT_AUTHENTICATED = "not_authenticated"
    AUTHENTICATION_FAILED = "authentication_failed"
    THROTTLED = "throttled"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    # Django REST framework's field validation.
    REQUIRED = "required"
    NULL = "null"
    BLANK = "blank"
    INVALID_CHOICE = "invalid_choice"
    MAX_LENGTH = "max_length"
    MIN_LENGTH = "min_length"
    MAX_VALUE = "max_value"
    MIN_VALUE = "min_value"
    MAX_DIGITS = "max_digits"
    MAX_DECIMAL_PLACES = "max_decimal_places"
    MAX_WHOLE_DIGITS = "max_whole_digits"
    DOES_NOT_EXIST = "does_not_exist"
    INCORRECT_TYPE = "incorrect_type"
    NOT_A_LIST = "not_a_list"
    NOT_A_DICT = "not_a_dict"
    EMPTY = "empty"
    DATE = "date"
    DATETIME = "datetime"


class DomainError(Exception):
    """A business rule refused the operation. ``code`` is stable and documented for clients."""

    code: str = Code.INVALID
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "field": self.field}


class NotFound(DomainError):
    code = Code.NOT_FOUND
    http_status = 404


class Conflict(DomainError):
    code = Code.CONFLICT
    http_status = 409


class ServiceUnavailable(DomainError):
    """The database (or another dependency the request needs) is down or restarting: a 503 the client retries
    with the same idempotency key, never a 500."""

    code = Code.SERVICE_UNAVAILABLE
    http_status = 503
    retry_after_seconds = 1


class Forbidden(DomainError):
    code = Code.PERMISSION_DENIED
    http_status = 403
