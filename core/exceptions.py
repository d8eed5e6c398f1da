"""The base of every domain error. Services raise ``DomainError`` subclasses with a stable machine-readable
``code``; ``core.api.errors`` renders them, so this module imports nothing from DRF."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the operation. ``code`` is stable and documented for clients."""

    code = "invalid"
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
    code = "not_found"
    http_status = 404


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class Forbidden(DomainError):
    code = "permission_denied"
    http_status = 403
