"""Structured logs: one JSON object per line, a request id on every line a request or its tasks write, and no
secret in any line.

- ``request_id`` lives in a context variable. ``core.middleware.RequestMiddleware`` sets it from the client's
  ``X-Request-ID`` (when it is a sane token) or a new one; Celery tasks published while it is set carry it in a
  message header (``task_publish_request_id``), and the worker sets it again around the task
  (``task_request_id_enter``/``exit``), so the API call and the matcher batch it queued log the same id.
- ``RequestContextFilter`` copies the id (and the running task's name and id) onto every record.
- ``JsonFormatter`` and ``PlainFormatter`` pass their *finished* line through ``redact``, so a secret cannot leak
  through a message, an ``extra`` field or a traceback: API keys (``ApiKey <prefix>.<secret>``), tokens, session
  and CSRF cookies, passwords and ``Authorization`` headers are replaced by ``[redacted]``.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
_REQUEST_ID_SHAPE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_task: ContextVar[tuple[str, str] | None] = ContextVar("task", default=None)

REDACTED = "[redacted]"
_SECRET_PATTERNS = [
    # Authorization header values: "ApiKey abc.def", "Token 0123", "Bearer x.y.z", "Basic dXNlcjpwdw=="
    (re.compile(r"\b(ApiKey|Token|Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]{6,}"), rf"\1\2{REDACTED}"),
    # A header dump or keyword argument naming the header, whatever the scheme.
    (re.compile(r"(?i)(\b(?:HTTP_)?authorization[\"']?\s*[:=]\s*[\"']?)[^\"',}\n]+"), rf"\1{REDACTED}"),
    # Cookies and session keys: "sessionid=...", "csrftoken=...", "session_key = '...'"
    (re.compile(r"(?i)\b(sessionid|csrftoken|csrfmiddlewaretoken|session_key)([\"']?\s*[:=]\s*[\"']?)[^\"'\s;&,}]+"),
     rf"\1\2{REDACTED}"),
    # Passwords, secrets and tokens as key=value or "key": "value" pairs (forms, JSON bodies, query strings).
    (re.compile(r"(?i)\b([\w-]*(?:password|passwd|secret|api_key|apikey|token)[\w-]*)([\"']?\s*[:=]\s*[\"']?)"
                r"(?!null\b|true\b|false\b)[^\"'\s&,}]+"), rf"\1\2{REDACTED}"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# --- the request id -------------------------------------------------------------------------------------


def request_id_current() -> str | None:
    return _request_id.get()


def request_id_from_header(value: str | None) -> str:
    """The client's id when it is a plain token (it is echoed in a header and in logs), else a new one."""
    if value and _REQUEST_ID_SHAPE.match(value):
        return value
    return uuid.uuid4().hex


def request_id_enter(value: str | None):
    return _request_id.set(value)


def request_id_exit(token) -> None:
    _request_id.reset(token)


# --- Celery: carry the id in the message, set it around the task -----------------------------------------


def task_publish_request_id(headers: dict | None = None, **_) -> None:
    """``before_task_publish``: a task queued while handling a request carries the request's id."""
    request_id = _request_id.get()
    if headers is not None and request_id and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


_task_tokens: dict[str, tuple] = {}


def task_request_id_enter(task_id: str | None = None, task=None, **_) -> None:
    """``task_prerun``: the task's logs carry the id of the request that queued it (a task run in-process keeps
    the current one; a periodic task gets its own task id)."""
    request = getattr(task, "request", None)
    request_id = getattr(request, TASK_HEADER, None) or _request_id.get() or task_id
    _task_tokens[task_id] = (_request_id.set(request_id), _task.set((getattr(task, "name", "?"), task_id or "?")))


def task_request_id_exit(task_id: str | None = None, **_) -> None:
    """``task_postrun``: back to what it was, so the next task does not inherit this one's id."""
    tokens = _task_tokens.pop(task_id, None)
    if tokens is not None:
        _request_id.reset(tokens[0])
        _task.reset(tokens[1])


# --- logging ----------------------------------------------------------------------------------------------


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` (and ``task``/``task_id`` inside a Celery task) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        task = _task.get()
        if task is not None:
            record.task, record.task_id = task
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, ``request_id``, any ``extra``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", False)
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s", *args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class PlainFormatter(logging.Formatter):
    """For a terminal (``LOG_FORMAT=plain``); redacted like the JSON lines."""

    def __init__(self, *args, **kwargs):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s", *args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = None
        return redact(super().format(record))


def logging_config(*, fmt: str, level: str) -> dict:
    """The ``LOGGING`` setting: every record through one stderr handler with the context filter. Python warnings
    are logged too (``py.warnings``), so the stream stays one JSON object per line."""
    logging.captureWarnings(True)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "core.logs.RequestContextFilter"}},
        "formatters": {
            "json": {"()": "core.logs.JsonFormatter"},
            "plain": {"()": "core.logs.PlainFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "plain" if fmt == "plain" else "json",
                        "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Our request log line replaces Django's 4xx/5xx warnings for the same request.
            "django.request": {"level": "ERROR"},
            "django.server": {"level": "WARNING"},
            # A failing readiness check is in the /readyz answer and its request line; no traceback per probe.
            "health_check": {"level": "ERROR"},
        },
    }
