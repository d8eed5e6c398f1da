"""Gunicorn settings for the API/admin (``gunicorn -c python:brokerage.gunicorn_conf brokerage.wsgi``).

Measured on the 2-core machine (README "Benchmarks"): 3 processes of 4 threads served order placement with the
lowest tail latency; 2 x 8 threads queued more behind the GIL, 4 x 2 left too few threads to overlap database
waits. ``WEB_CONCURRENCY`` / ``WEB_THREADS`` override.
"""

import gc
import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("WEB_THREADS", "4"))


def post_fork(server, worker):
    # Objects loaded before the fork (Django, the URL conf, models) are never garbage: keep the collector from
    # scanning them again in every full collection, which would stall every thread of the process.
    gc.freeze()
