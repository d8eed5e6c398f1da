"""Run a function over jobs on several threads, each closing its own database connection when done."""

from concurrent.futures import ThreadPoolExecutor

from django.db import connection


def run_in_threads(fn, jobs, *, threads: int = 8) -> list:
    def wrapped(job):
        try:
            return fn(job)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(wrapped, jobs))
