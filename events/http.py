"""One bounded HTTP POST to a client's webhook endpoint, safe against server-side request forgery.

- The host is resolved once; every address must be public (no loopback, private, link-local, multicast or
  reserved address) unless ``WEBHOOK_ALLOW_PRIVATE_ADDRESSES`` is on, and the connection goes to the address
  that was checked (a DNS answer that changes between the check and the connection cannot redirect it).
- Bounded: a connect timeout, and one deadline for the whole attempt (each socket read gets what is left).
- Redirects are never followed (``http.client`` does not): a 3xx is a failed attempt.
- The response body is read up to 64 KiB, only to free the connection.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from events.errors import EventsError, WebhookAddressRefused

MAX_RESPONSE_BYTES = 65536


@dataclass(frozen=True)
class Response:
    status: int | None
    latency_ms: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def url_check(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an acceptable endpoint URL, else ``EventsError``."""
    parts = urlsplit(url)
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EventsError("A webhook URL is an absolute https:// URL.", field="url")
    if parts.scheme == "http" and not allow_private:
        raise EventsError("A webhook URL must use https.", field="url")
    if parts.username or parts.password:
        raise EventsError("A webhook URL carries no credentials; verify our signature instead.", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise EventsError("The URL's port is not a number from 1 to 65535.", field="url") from exc
    return parts.scheme, parts.hostname, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def address_for(host: str, port: int) -> str:
    """The address to connect to: every address the host resolves to must be acceptable."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise EventsError(f"The host {host!r} does not resolve.", field="url") from exc
    addresses = [info[4][0] for info in infos]
    if not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not ip.is_global or ip.is_multicast:
                raise WebhookAddressRefused(f"{host} resolves to {address}, which is not a public address.",
                                            field="url")
    return addresses[0]


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST ``body``; never raises for network trouble (it is in ``Response.error``)."""
    started = time.monotonic()
    deadline = started + float(settings.WEBHOOK_TIMEOUT_SECONDS)

    def result(status=None, error="") -> Response:
        return Response(status, int((time.monotonic() - started) * 1000), error[:500])

    try:
        scheme, host, port, path = url_check(url)
        address = address_for(host, port)
    except EventsError as exc:
        return result(error=exc.message)
    connect_timeout = min(float(settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS), deadline - time.monotonic())
    try:
        sock = socket.create_connection((address, port), timeout=connect_timeout)
    except OSError as exc:
        return result(error=f"connect: {exc}")
    try:
        if scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        connection = http.client.HTTPConnection(host, port)
        connection.sock = sock
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        connection.request("POST", path, body=body, headers={**headers, "Content-Length": str(len(body))})
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        response = connection.getresponse()
        try:
            _drain(response, deadline, sock)
        except (OSError, http.client.HTTPException):
            pass  # the status decided the attempt; the body is only read to be polite
        return result(status=response.status)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        kind = "timeout" if isinstance(exc, TimeoutError | socket.timeout) else type(exc).__name__
        return result(error=f"{kind}: {exc}")
    finally:
        sock.close()


def _drain(response, deadline: float, sock) -> None:
    read = 0
    while read < MAX_RESPONSE_BYTES:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        sock.settimeout(left)
        chunk = response.read(min(8192, MAX_RESPONSE_BYTES - read))
        if not chunk:
            return
        read += len(chunk)
