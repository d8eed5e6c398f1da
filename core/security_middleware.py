"""The request layers of README "Security", kept cheap for API-key requests (bench/security_overhead.py).

- ``SessionOtpMiddleware``: django-otp's ``OTPMiddleware`` (``request.user.is_verified()``) for requests that carry
  a session cookie; an API-key request has no session, so nothing to verify and nothing to wrap.
- ``StaffSessionMiddleware``: the idle and absolute lifetimes of staff sessions (``core.staff_auth``).
- ``ContentSecurityPolicyMiddleware``: django-csp's middleware with the header built once. The policy is static
  (no nonces, no per-view changes), so building it on every response only cost time; a response that asks for
  anything else (a nonce, ``@csp_update``, ``@csp_exempt``...) goes through django-csp as usual.
"""

from __future__ import annotations

import time

from csp.constants import HEADER
from csp.middleware import CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth import logout
from django.core.signals import setting_changed
from django_otp.middleware import OTPMiddleware

from core.staff_auth import SIGNED_IN_AT

_PER_RESPONSE = ("_csp_config", "_csp_update", "_csp_replace", "_csp_exempt", "_csp_exempt_ro",
                 "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")


class SessionOtpMiddleware(OTPMiddleware):
    def __call__(self, request):
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return self.get_response(request)
        return super().__call__(request)


class StaffSessionMiddleware:
    """A staff session expires after ``STAFF_SESSION_IDLE_SECONDS`` without a request (each request moves the
    expiry: the session is saved with it) and ``STAFF_SESSION_MAX_SECONDS`` after sign-in. Requests without a
    session cookie (API keys) are not looked at."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.SESSION_COOKIE_NAME in request.COOKIES and request.user.is_authenticated and request.user.is_staff:
            session = request.session
            now = int(time.time())
            signed_in_at = session.setdefault(SIGNED_IN_AT, now)
            if now - signed_in_at > settings.STAFF_SESSION_MAX_SECONDS:
                logout(request)
            else:
                session.set_expiry(settings.STAFF_SESSION_IDLE_SECONDS)
        return self.get_response(request)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    _header: str | None = None

    def process_response(self, request, response):
        if (getattr(request, "_csp_nonce", None) is not None or any(hasattr(response, a) for a in _PER_RESPONSE)
                or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
                or settings.CONTENT_SECURITY_POLICY.get("EXCLUDE_URL_PREFIXES")):
            return super().process_response(request, response)
        if HEADER not in response and not (settings.DEBUG and response.status_code in (404, 500)):
            response[HEADER] = _static_header()
        return response


def _static_header() -> str:
    if ContentSecurityPolicyMiddleware._header is None:
        ContentSecurityPolicyMiddleware._header = build_policy()
    return ContentSecurityPolicyMiddleware._header


def _forget_header(setting, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        ContentSecurityPolicyMiddleware._header = None


setting_changed.connect(_forget_header, dispatch_uid="core.security_middleware.forget_csp_header")
