"""API-key authentication for client apps, and expiring DRF tokens for staff.

Clients send ``Authorization: ApiKey <prefix>.<secret>`` (or ``X-API-Key: <prefix>.<secret>``). The prefix
finds the key; the secret is compared with its stored SHA-256 in constant time. ``request.auth`` is the ApiKey.
A key with ``signing_required`` also signs each request (``X-API-Timestamp``, ``X-API-Signature``: README
"Request signing"); it may then send its prefix alone.

Every failed credential gets the same 401 ``invalid_api_key`` (the reason is logged for operations, never told
to the caller), and counts against the caller's IP and the key prefix (``AuthFailureGuard``: 429
``authentication_throttled`` past the limit).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache as default_cache
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, TokenAuthentication, get_authorization_header

from accounts.errors import Code
from accounts.models import ApiKey, ClientAccount, Membership
from accounts.services import api_key_matches, api_key_signing_secret
from accounts.throttling import AuthFailureGuard
from audit.context import client_ip, credential_used
from core.db import JoinedSelect, joined_instances, joined_select, prepared_cursor
from ledger.models import LedgerAccount

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(seconds=60)
TIMESTAMP_HEADER = "X-API-Timestamp"
SIGNATURE_HEADER = "X-API-Signature"
TIMESTAMP = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
SIGNATURE = re.compile(r"[0-9a-f]{64}")
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


def request_signature(secret: str, *, timestamp: str, method: str, path: str, body: bytes) -> str:
    """HMAC-SHA256, hex, of timestamp + method + path (with its query string) + body, keyed by the secret."""
    message = timestamp.encode() + method.upper().encode() + path.encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _credential(request) -> str | None:
    header = get_authorization_header(request).decode("latin-1")
    if header[:7].lower() == "apikey ":
        return header[7:].strip()
    return request.META.get("HTTP_X_API_KEY") or None


def api_key_by_prefix(prefix: str) -> ApiKey | None:
    """The key with this prefix, read fresh on every request (revocation applies at once), together with what
    the request needs next: its user with the user's membership (scopes), and its account with the account's
    ledger account (order placement). A hand-written join: compiling the equivalent ``select_related`` query
    cost more CPU than all the rest of the authentication."""
    select = _api_key_query()
    with prepared_cursor() as cursor:
        cursor.execute(f"{select.text} WHERE k.prefix = %s", [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    key, user, membership, account, ledger_account = joined_instances(select, row)
    ApiKey._meta.get_field("user").set_cached_value(key, user)
    ApiKey._meta.get_field("account").set_cached_value(key, account)
    user._meta.get_field("membership").set_cached_value(user, membership)  # None: known to have none
    ClientAccount._meta.get_field("ledger_account").set_cached_value(account, ledger_account)
    if membership is not None:
        Membership._meta.get_field("user").set_cached_value(membership, user)
    if ledger_account is not None:
        LedgerAccount._meta.get_field("client").set_cached_value(ledger_account, account)
    return key


@cache
def _api_key_query() -> JoinedSelect:
    """Every column of the key, user, membership, account and ledger account."""
    return joined_select([
        (ApiKey, "k", "{table} k"),
        (get_user_model(), "u", "JOIN {table} u ON u.id = k.user_id"),
        (Membership, "m", "LEFT JOIN {table} m ON m.user_id = u.id"),
        (ClientAccount, "a", "JOIN {table} a ON a.id = k.account_id"),
        (LedgerAccount, "l", "LEFT JOIN {table} l ON l.client_id = a.id"),
    ])


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "ApiKey"

    def authenticate(self, request):
        credential = _credential(request)
        if credential is None:
            return None
        prefix, _, secret = credential.partition(".")
        guard = AuthFailureGuard(request, prefix=prefix)
        guard.check()
        key = api_key_by_prefix(prefix) if prefix.isalnum() and len(prefix) <= 16 else None
        refusal = self._refusal(request, key, secret)
        if refusal is not None:
            guard.failed()
            logger.warning("API key authentication refused (%s): prefix %r from %s", refusal, prefix[:16],
                           client_ip(request))
            raise exceptions.AuthenticationFailed("Invalid API key.", code=Code.INVALID_API_KEY)
        self._touch(key)
        credential_used(user_id=key.user_id, label=f"{key.user.get_username()} (api-key {key.prefix})"[:100])
        return key.user, key

    @staticmethod
    def _refusal(request, key: ApiKey | None, secret: str) -> str | None:
        """Why the credential is refused (for the log), or None. Every check runs on a known key whatever the
        outcome of the previous one, so the answer's timing says little more than its body."""
        if key is None:
            hmac.compare_digest(_DUMMY_HASH, hashlib.sha256(secret.encode()).hexdigest())
            return "unknown key"
        if key.signing_required:
            wrong = bool(secret) and not api_key_matches(key, secret)
            reasons = ["wrong secret" if wrong else None, _signature_refusal(request, key)]
        else:
            reasons = [None if secret and api_key_matches(key, secret) else "wrong secret"]
        reasons += [
            "revoked" if key.revoked_at is not None else None,
            "expired" if key.is_expired else None,
            "inactive user" if not key.user.is_active else None,
            "IP not allowed" if key.allowed_ips and client_ip(request) not in key.allowed_ips else None,
        ]
        return next((reason for reason in reasons if reason), None)

    def authenticate_header(self, request):
        return self.keyword

    @staticmethod
    def _touch(key: ApiKey) -> None:
        """Record use at most once a minute, so reads do not each cost a write."""
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now


def _signature_refusal(request, key: ApiKey) -> str | None:
    """Why a signing key's request is not validly signed, or None: the timestamp within
    ``settings.API_SIGNATURE_WINDOW_SECONDS`` of the server's clock, the HMAC right, and not seen before."""
    timestamp = request.META.get("HTTP_X_API_TIMESTAMP", "")
    signature = request.META.get("HTTP_X_API_SIGNATURE", "").lower()
    if not timestamp or not signature:
        return "unsigned"
    if not TIMESTAMP.fullmatch(timestamp) or not SIGNATURE.fullmatch(signature):
        return "malformed signature"
    if abs(time.time() - float(timestamp)) > settings.API_SIGNATURE_WINDOW_SECONDS:
        return "stale timestamp"
    expected = request_signature(api_key_signing_secret(key.prefix), timestamp=timestamp, method=request.method,
                                 path=request.get_full_path(), body=request.body)
    if not hmac.compare_digest(expected, signature):
        return "wrong signature"
    # A signature is good once: a captured request cannot be replayed inside the window.
    if not default_cache.add(f"api-signature:{key.prefix}:{signature}", 1,
                             timeout=2 * settings.API_SIGNATURE_WINDOW_SECONDS + 1):
        return "replayed signature"
    return None


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token (``Authorization: Token <key>``, staff), refused ``settings.API_TOKEN_TTL`` after it was
    created; every failure is the same 401 ``invalid_token`` and counts against the caller's IP."""

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None
        guard = AuthFailureGuard(request, prefix=None)
        guard.check()
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed as exc:
            guard.failed()
            logger.warning("Token authentication refused (%s) from %s", exc.detail, client_ip(request))
            raise exceptions.AuthenticationFailed("Invalid token.", code=Code.INVALID_TOKEN) from None

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token.created + settings.API_TOKEN_TTL <= timezone.now():
            raise exceptions.AuthenticationFailed("Token expired.")
        return user, token
