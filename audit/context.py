"""Who and where a request comes from, for audit rows written deep inside services.

``AuditContextMiddleware`` opens a context per request with the client IP; API-key authentication adds the
key's label. ``audit_record`` reads it, so services keep taking only ``acting_user``.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

_current: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)


@dataclass
class AuditContext:
    ip_address: str | None = None
    user_id: int | None = None
    credential_label: str | None = None


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR")


def current_audit_context() -> AuditContext | None:
    return _current.get()


def credential_used(*, user_id: int, label: str) -> None:
    """Remember that this request's user authenticated with a credential (an API key) named ``label``."""
    context = _current.get()
    if context is not None:
        context.user_id = user_id
        context.credential_label = label


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current.set(AuditContext(ip_address=client_ip(request)))
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
