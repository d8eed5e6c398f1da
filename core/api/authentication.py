"""DRF's session authentication with its CSRF refusal catalogued: 403 ``csrf_failed`` instead of a bare
``permission_denied``, so a browser client can tell a missing CSRF token from a missing permission."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication

from core.exceptions import Code


class CsrfCodedSessionAuthentication(SessionAuthentication):
    def enforce_csrf(self, request):
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc.detail), code=Code.CSRF_FAILED) from None
