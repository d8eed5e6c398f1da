"""The first middleware of every request: its id, its metrics, its one log line, and a 503 when the database
is unreachable.

- ``X-Request-ID``: the client's (a plain token up to 64 characters) or a new one; in every log line of the
  request and of the Celery tasks it queued (``core.logs``), and returned in the response header.
- Metrics: ``brokerage_http_requests_total{route,method,status}`` and
  ``brokerage_http_request_duration_seconds{route,method,status}``; ``route`` is the URL pattern
  (``api/v1/orders/<int:pk>/``), never the raw path, so ids do not multiply the series.
- One ``brokerage.request`` log line per request: method, route, path (no query string: it may carry
  secrets), status, duration, user id and API key label. Headers and bodies are never logged.
- A database error that escapes a view outside the API (the admin, health pages) becomes a 503 too: the API's
  own handler (``core.api.errors``) already answers its requests with ``service_unavailable``.
"""

from __future__ import annotations

import logging
import time

from django.http import HttpResponse, JsonResponse
from django.utils.functional import empty

from core import logs
from core.api.errors import DATABASE_UNAVAILABLE, service_unavailable_body
from core.exceptions import ServiceUnavailable
from core.metrics import counter, histogram

logger = logging.getLogger("brokerage.request")

REQUESTS = counter("http_requests_total", "HTTP requests by route, method and status.", ["route", "method", "status"])
LATENCY = histogram("http_request_duration_seconds", "HTTP request duration by route, method and status.",
                    ["route", "method", "status"])
UNMATCHED = "<unmatched>"
QUIET_ROUTES = {"healthz", "readyz", "metrics"}  # probes and scrapes: counted, not logged one by one


class RequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = logs.request_id_from_header(request.headers.get(logs.REQUEST_ID_HEADER))
        token = logs.request_id_enter(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[logs.REQUEST_ID_HEADER] = request_id
            self._record(request, response.status_code, time.perf_counter() - started)
            return response
        finally:
            logs.request_id_exit(token)

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_UNAVAILABLE):
            logger.warning("database unavailable: %s", type(exception).__name__)
            headers = {"Retry-After": str(ServiceUnavailable.retry_after_seconds)}
            if request.path.startswith("/api/"):
                return JsonResponse(service_unavailable_body(), status=503, headers=headers)
            return HttpResponse("Service temporarily unavailable; retry shortly.\n", status=503,
                                content_type="text/plain", headers=headers)
        return None

    @staticmethod
    def _record(request, status: int, seconds: float) -> None:
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name or UNMATCHED) if match is not None else UNMATCHED
        labels = (route, request.method, str(status))
        REQUESTS.labels(*labels).inc()
        LATENCY.labels(*labels).observe(seconds)
        if route in QUIET_ROUTES and status < 400:
            return
        user = _user_if_loaded(request)
        auth = getattr(request, "auth", None)
        logger.log(
            logging.WARNING if status >= 500 else logging.INFO,
            "%s %s %s %.1fms", request.method, route, status, seconds * 1000,
            extra={"method": request.method, "route": route, "path": request.path, "status": status,
                   "duration_ms": round(seconds * 1000, 2),
                   "user_id": user.pk if user is not None and user.is_authenticated else None,
                   "credential": getattr(auth, "prefix", None)},
        )


def _user_if_loaded(request):
    """The request's user if something already loaded it: logging must not query (the database may be down)."""
    user = getattr(request, "user", None)
    wrapped = getattr(user, "_wrapped", user)
    return None if wrapped is empty else wrapped
