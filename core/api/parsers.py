"""The API's only request-body parser: JSON, bounded in size and depth.

DRF's own JSONParser reads the whole stream whatever its length (Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` applies
only to ``request.body`` and forms) and lets a ``RecursionError`` out of ``json.loads`` for a deeply nested body,
a 500. Here a body over the limit is a 413 ``request_too_large`` read no further than the limit, and a body
nested deeper than ``MAX_DEPTH`` (or too deep for Python's parser) is a 400 ``parse_error``. Forms and multipart
are not parsed at all: the API answers them with 415 ``unsupported_media_type``, so the OpenAPI schema offers
JSON request bodies only (what generated clients rely on).
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import exceptions, parsers, status
from rest_framework.settings import api_settings

from core.exceptions import Code

# No request of this API nests deeper than a handful of levels; 32 leaves room and stays far below the depth at
# which Python's own recursion (json.dumps for the idempotency fingerprint, repr in error messages) would fail.
MAX_DEPTH = 32


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than this API accepts."
    default_code = Code.REQUEST_TOO_LARGE


def body_limit() -> int | None:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def read_bounded(stream) -> bytes:
    """The body, refused with 413 once it is longer than the upload limit (read at most one byte past it)."""
    limit = body_limit()
    raw = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(raw) > limit:
        raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
    return raw


def nesting_depth_exceeds(data, limit: int) -> bool:
    """Whether ``data`` (parsed JSON) nests lists/objects deeper than ``limit``; iterative, so never recursion."""
    if not isinstance(data, (dict, list)):
        return False
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class JsonParser(parsers.JSONParser):
    """``application/json`` bodies: size-bounded, depth-bounded, NaN/Infinity refused (DRF's STRICT_JSON)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = read_bounded(stream)
        try:
            text = raw.decode(encoding)
            data = json.loads(text, parse_constant=_refuse_constant if api_settings.STRICT_JSON else None)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.") from None
        except ValueError as exc:  # UnicodeDecodeError and json.JSONDecodeError are ValueErrors
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        # Fewer brackets than the limit cannot nest deeper than it (the common case: counted in C, no walk).
        if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and nesting_depth_exceeds(data, MAX_DEPTH):
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        return data
