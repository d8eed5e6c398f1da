"""Logging filters.

``RoutineTaskFilter``: Celery logs three INFO lines for every run of every task: the beat sending it
(``celery.beat``), the worker receiving it (``celery.worker.strategy``) and the task succeeding
(``celery.app.trace``). For a routine periodic task (the market sweep runs every 5 s) that drowns the log. For
the tasks named here those lines become DEBUG records, shown only when the logger is at DEBUG, except a success
that returned something (the sweep found work): that one stays at INFO. Failures and retries are untouched.
"""

from __future__ import annotations

import logging

CELERY_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")
EMPTY_RESULTS = {"None", "[]", "{}", "()", "0"}


class RoutineTaskFilter(logging.Filter):
    def __init__(self, task_names):
        super().__init__()
        self.task_names = frozenset(task_names)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self._is_routine(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    def _is_routine(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if isinstance(data, dict):  # worker: received, succeeded
            if data.get("name") not in self.task_names:
                return False
            return "return_value" not in data or str(data["return_value"]) in EMPTY_RESULTS
        args = record.args if isinstance(record.args, tuple) else ()
        return record.name == "celery.beat" and len(args) == 2 and args[1] in self.task_names  # beat: sending

    @classmethod
    def install(cls, task_names) -> RoutineTaskFilter:
        """Attach one filter to Celery's three loggers (idempotent: an installed filter is replaced)."""
        routine = cls(task_names)
        for name in CELERY_LOGGERS:
            logger = logging.getLogger(name)
            for old in [f for f in logger.filters if isinstance(f, cls)]:
                logger.removeFilter(old)
            logger.addFilter(routine)
        return routine
