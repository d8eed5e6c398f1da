"""The WebSocket handshake authenticated as a REST request (README "Streams"): the same headers
(``Authorization: ApiKey <prefix>.<secret>`` or ``X-API-Key``; a signing key also ``X-API-Timestamp`` and
``X-API-Signature`` over ``GET`` and the path, with an empty body), checked by the same code
(``accounts.authentication.ApiKeyAuthentication``): revocation, expiry, IP allow-list and failure throttling
included."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from rest_framework.request import Request

from accounts.authentication import ApiKeyAuthentication
from accounts.permissions import granted_scopes


@dataclass(frozen=True)
class Credential:
    key_id: int
    account_id: int
    scopes: frozenset[str]


def handshake_request(scope: dict) -> Request:
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = scope.get("path", "/")
    request.META = {"REMOTE_ADDR": (scope.get("client") or ("", 0))[0],
                    "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
                    "REQUEST_METHOD": "GET"}
    for name, value in scope.get("headers", []):
        request.META["HTTP_" + name.decode("latin-1").upper().replace("-", "_")] = value.decode("latin-1")
    request._body = b""
    return Request(request)


def handshake_authenticate(scope: dict) -> Credential | None:
    """The handshake's API key, None if it shows none; raises DRF's ``AuthenticationFailed`` / ``Throttled``."""
    request = handshake_request(scope)
    result = ApiKeyAuthentication().authenticate(request)
    if result is None:
        return None
    user, key = result
    request.user, request.auth = user, key
    return Credential(key.pk, key.account_id, frozenset(granted_scopes(request)))
