"""API-key authentication for client apps.

Clients send ``Authorization: ApiKey <prefix>.<secret>`` (or ``X-API-Key: <prefix>.<secret>``). The prefix
finds the key; the secret is compared with its stored SHA-256 in constant time. ``request.auth`` is the ApiKey.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.audit_context import client_ip, credential_used
from accounts.models import ApiKey
from accounts.services import api_key_matches

LAST_USED_RESOLUTION = timedelta(seconds=60)


def _credential(request) -> str | None:
    header = get_authorization_header(request).decode("latin-1")
    if header[:7].lower() == "apikey ":
        return header[7:].strip()
    return request.META.get("HTTP_X_API_KEY") or None


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "ApiKey"

    def authenticate(self, request):
        credential = _credential(request)
        if credential is None:
            return None
        prefix, _, secret = credential.partition(".")
        # With what every API request needs next: the user's membership (scopes) and the account's ledger account.
        key = (ApiKey.objects.select_related("user__membership", "account__ledger_account")
               .filter(prefix=prefix).first())
        if key is None or not secret or not api_key_matches(key, secret):
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        if not key.is_active:
            raise exceptions.AuthenticationFailed("This API key has been revoked.", code="api_key_revoked")
        if not key.user.is_active:
            raise exceptions.AuthenticationFailed("The user of this API key is inactive.", code="user_inactive")
        if key.allowed_ips and client_ip(request) not in key.allowed_ips:
            raise exceptions.AuthenticationFailed("Requests from this IP address are not allowed for this key.",
                                                  code="ip_not_allowed")
        self._touch(key)
        credential_used(user_id=key.user_id, label=f"{key.user.get_username()} (api-key {key.prefix})"[:100])
        return key.user, key

    def authenticate_header(self, request):
        return self.keyword

    @staticmethod
    def _touch(key: ApiKey) -> None:
        """Record use at most once a minute, so reads do not each cost a write."""
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
