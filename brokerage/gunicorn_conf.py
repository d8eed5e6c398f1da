"""Gunicorn settings for the API/admin (``gunicorn -c python:brokerage.gunicorn_conf brokerage.wsgi``).

Measured on the 2-core machine (README "Benchmarks"): 3 processes of 4 threads served order placement with the
lowest tail latency; 2 x 8 threads queued more behind the GIL, 4 x 2 left too few threads to overlap database
waits. ``WEB_CONCURRENCY`` / ``WEB_THREADS`` override.

Logs: gunicorn's own lines are JSON like the application's (``core.logs``); the access log is off because the
application writes one line per request with its request id (``core.middleware``). Metrics: with
``PROMETHEUS_MULTIPROC_DIR`` set, a dead worker's live values are dropped (``child_exit``).
"""

import gc
import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("WEB_THREADS", "4"))
control_socket_disable = True  # one fixed path per user would be shared by every gunicorn on the machine
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "core.logs.JsonFormatter"}},
    "filters": {"context": {"()": "core.logs.RequestContextFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"],
                             "stream": "ext://sys.stderr"}},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def post_fork(server, worker):
    # Objects loaded before the fork (Django, the URL conf, models) are never garbage: keep the collector from
    # scanning them again in every full collection, which would stall every thread of the process.
    gc.freeze()


def child_exit(server, worker):
    from core.metrics import process_dead

    process_dead(worker.pid)
