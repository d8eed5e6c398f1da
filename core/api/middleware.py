"""API paths answer every error as JSON ``{"code","message","field"}``, in every mode, DEBUG on or off.

DRF renders the errors of its views (``core.api.errors.api_exception_handler``), but some requests never reach a
view or fail in ways DRF hands back to Django: a ``Host`` not in ``ALLOWED_HOSTS`` (refused by the first
middleware that asks for the host), a body over the upload limit, a malformed form body, an unroutable URL, an
uncaught exception. Django answers those with its HTML error pages, and with DEBUG on with its technical pages
(settings, traceback, local variables). This middleware, first in ``MIDDLEWARE``, keeps all of that from an API
client:

- before anything else reads the request: a disallowed host is a 400 ``bad_host``; a declared body longer than
  ``DATA_UPLOAD_MAX_MEMORY_SIZE`` a 413 ``request_too_large`` (the body is not read);
- an exception a view lets out becomes the matching JSON error (``process_exception``, which Django calls
  before it would render a debug page); a 500 is logged and signalled exactly as Django does;
- any other error response on an API path that is not already JSON (a debug 404 page, an HTML 400 raised by an
  inner middleware) is replaced by the JSON error of its status. DRF's own responses are left alone.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core import signals
from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.utils.log import log_response

from core.exceptions import Code

API_PREFIX = "/api/"

CODE_FOR_STATUS = {
    400: Code.BAD_REQUEST,
    401: Code.NOT_AUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    406: Code.NOT_ACCEPTABLE,
    409: Code.CONFLICT,
    413: Code.REQUEST_TOO_LARGE,
    415: Code.UNSUPPORTED_MEDIA_TYPE,
    429: Code.THROTTLED,
}
MESSAGES = {
    Code.BAD_HOST: "The Host header names a host this server does not serve.",
    Code.BAD_REQUEST: "The request is malformed.",
    Code.REQUEST_TOO_LARGE: "The request body is larger than this API accepts.",
    Code.MALFORMED_MULTIPART: "The multipart body is malformed.",
    Code.NOT_FOUND: "No such resource.",
    Code.PERMISSION_DENIED: "You do not have permission to perform this action.",
    Code.SERVER_ERROR: "Internal error; it has been logged.",
}


def is_api_request(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def json_error(code: str, status: int, message: str | None = None, field: str | None = None) -> JsonResponse:
    message = message or MESSAGES.get(code) or "The request could not be served."
    return JsonResponse({"code": str(code), "message": message, "field": field}, status=status)


def _declared_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api_request(request):
            return self.get_response(request)
        try:
            request.get_host()
        except DisallowedHost as exc:
            logging.getLogger("django.security.DisallowedHost").error(
                str(exc), extra={"request": request, "status_code": 400}
            )
            return json_error(Code.BAD_HOST, 400)
        length = _declared_length(request)
        if length is None:
            return json_error(Code.BAD_REQUEST, 400, "The Content-Length header is not a number.")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return json_error(Code.REQUEST_TOO_LARGE, 413, f"The request body is larger than {limit} bytes.")
        return self._json_only(request, self.get_response(request))

    def process_exception(self, request, exception):
        """A view's exception on an API path, answered before Django would render a (debug) page for it."""
        if not is_api_request(request):
            return None
        if isinstance(exception, Http404):
            return json_error(Code.NOT_FOUND, 404)
        if isinstance(exception, PermissionDenied):
            return json_error(Code.PERMISSION_DENIED, 403)
        response = client_error_response(exception)
        if response is not None:
            log_response("%s: %s", str(exception), request.path, response=response, request=request,
                         exception=exception, logger=logging.getLogger(f"django.security.{type(exception).__name__}"),
                         level="warning")
            return response
        signals.got_request_exception.send(sender=type(self), request=request)
        response = json_error(Code.SERVER_ERROR, 500)
        log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request,
                     exception=exception)
        return response

    @staticmethod
    def _json_only(request, response):
        if response.status_code < 400 or hasattr(response, "accepted_renderer"):
            return response  # a success, or rendered by DRF (JSON, or the browsable API a browser asked for)
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        status = response.status_code
        code = CODE_FOR_STATUS.get(status, Code.SERVER_ERROR if status >= 500 else Code.BAD_REQUEST)
        replaced = json_error(code, status)
        if response.has_header("Allow"):
            replaced["Allow"] = response["Allow"]
        return replaced


def client_error_response(exception) -> JsonResponse | None:
    """The JSON error of an exception that is the client's fault (bad host, body too large, malformed body,
    another suspicious request), or None when it is not one of those."""
    client_error = _client_error(exception)
    return None if client_error is None else json_error(*client_error)


def _client_error(exception) -> tuple[str, int] | None:
    """(code, status) of an exception that is the client's fault, or None for a server error."""
    if isinstance(exception, RequestDataTooBig):
        return Code.REQUEST_TOO_LARGE, 413
    if isinstance(exception, DisallowedHost):
        return Code.BAD_HOST, 400
    if isinstance(exception, MultiPartParserError):
        return Code.MALFORMED_MULTIPART, 400
    if isinstance(exception, (SuspiciousOperation, BadRequest, UnreadablePostError)):
        return Code.BAD_REQUEST, 400
    return None
