"""The one place that turns errors into API responses: ``{"code": ..., "message": ..., "field": ...}``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.api.middleware import client_error_response, is_api_request, json_error
from core.exceptions import Code, DomainError, ServiceUnavailable

DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)  # connection lost, server restarting, etc.


def service_unavailable_body() -> dict:
    return ServiceUnavailable("The service is temporarily unavailable; retry shortly with the same "
                              "idempotency key or client order id.").as_dict()


def _first_error(detail, path: str | None = None) -> tuple[str | None, drf_exceptions.ErrorDetail | str]:
    """Walk DRF's nested error detail to its first leaf, returning (field path, error)."""
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        if key in ("non_field_errors", "__all__"):
            return _first_error(value, path)
        return _first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], path)
    return path, detail


def _validation_body(exc: drf_exceptions.ValidationError) -> dict:
    field, error = _first_error(exc.detail)
    code = getattr(error, "code", None) or Code.INVALID
    return {"code": code, "message": str(error), "field": field, "errors": exc.detail}


def error_code(exc: BaseException) -> str | None:
    """The ``code`` the API answers ``exc`` with (for metrics by code); None for an unexpected error."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return Code.SERVICE_UNAVAILABLE
    if isinstance(exc, DomainError):
        return exc.code
    if isinstance(exc, DjangoValidationError):
        return Code.INVALID
    if isinstance(exc, drf_exceptions.ValidationError):
        _, error = _first_error(exc.detail)
        return getattr(error, "code", None) or Code.INVALID
    if isinstance(exc, drf_exceptions.APIException):
        codes = exc.get_codes()
        return codes if isinstance(codes, str) else exc.default_code
    return None


def api_exception_handler(exc, context):
    if isinstance(exc, DATABASE_UNAVAILABLE):
        # A database that is down or restarting fails the request fast and says so: 503, never 500. The
        # transaction rolled back, so a retry with the same idempotency key is safe.
        return Response(service_unavailable_body(), status=503,
                        headers={"Retry-After": str(ServiceUnavailable.retry_after_seconds)})
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.http_status)
    if isinstance(exc, DjangoValidationError):
        exc = drf_exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        response.data = _validation_body(exc)
    elif isinstance(exc, drf_exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = {"code": code, "message": str(exc.detail), "field": None}
    return response


def client_error_answer(exc: DomainError | drf_exceptions.ValidationError) -> tuple[int, dict]:
    """The status and body the API answers a refusal with, for a response that carries several answers (each
    order of a batch answered as ``POST /orders/`` would have answered it alone)."""
    response = api_exception_handler(exc, {})
    return response.status_code, response.data


def bad_request(request, exception=None):
    """``handler400``: a request Django refused (malformed body, suspicious input) as JSON on API paths."""
    from django.views.defaults import bad_request as django_bad_request

    if is_api_request(request):
        return client_error_response(exception) or json_error(Code.BAD_REQUEST, 400)
    return django_bad_request(request, exception)


def not_found(request, exception=None):
    """URLs that match no route: the API answers in its JSON error shape, everything else as Django does."""
    from django.views.defaults import page_not_found

    if is_api_request(request):
        return json_error(Code.NOT_FOUND, 404)
    return page_not_found(request, exception)


def server_error(request):
    from django.views.defaults import server_error as django_server_error

    if is_api_request(request):
        return json_error(Code.SERVER_ERROR, 500)
    return django_server_error(request)


def csrf_failure(request, reason=""):
    """``CSRF_FAILURE_VIEW``: Django's CSRF refusal, as JSON ``csrf_failed`` on API paths."""
    from django.views.csrf import csrf_failure as django_csrf_failure

    if is_api_request(request):
        return json_error(Code.CSRF_FAILED, 403, f"CSRF check failed: {reason}")
    return django_csrf_failure(request, reason=reason)
