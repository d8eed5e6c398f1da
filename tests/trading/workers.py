"""A real Celery worker process for tests: on the test database and the test Redis (``TEST_REDIS_URL``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from brokerage.celery import app as celery_app
from trading import wakeups

STARTUP_SECONDS = 60


@pytest.fixture
def broker_url(settings):
    """Publish to the test Redis for the test's duration (tasks are not run in-process meanwhile)."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set")
    redis.Redis.from_url(url).flushdb()
    before = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    settings.CELERY_BROKER_URL = url
    celery_app.conf.update(broker_url=url, task_always_eager=False)
    publisher_reset()
    yield url
    celery_app.conf.update(broker_url=before[0], task_always_eager=before[1])
    publisher_reset()
    redis.Redis.from_url(url).flushdb()


AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def amqp_broker_url(settings):
    """Publish to RabbitMQ (``TEST_AMQP_URL``) on a queue of this test's own (``CELERY_QUEUE``), so nothing else
    on the shared broker consumes or sees its messages; the queue is deleted afterwards."""
    from kombu import Connection, Queue

    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # CI starts RabbitMQ (.ci/run): a missing broker there is a failure, not a skip
        if os.environ.get("CI"):
            raise
        pytest.skip(f"RabbitMQ is not reachable at {AMQP_URL}: {exc}")
    before = (celery_app.conf.broker_url, celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    settings.CELERY_BROKER_URL = AMQP_URL
    celery_app.conf.update(broker_url=AMQP_URL, task_always_eager=False, task_default_queue=queue)
    publisher_reset()
    yield AMQP_URL, queue
    celery_app.conf.update(broker_url=before[0], task_always_eager=before[1], task_default_queue=before[2])
    publisher_reset()
    with Connection(AMQP_URL, connect_timeout=3) as conn:
        Queue(queue, channel=conn.default_channel).delete()


def publisher_reset() -> None:
    """Forget connections made with an earlier broker URL (an earlier test may have published elsewhere)."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    wakeups._redis.cache_clear()


def test_database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def worker_start(broker: str, log: Path, name: str, *, wait: bool = True, env: dict | None = None) -> subprocess.Popen:
    """``celery -A brokerage worker --pool=solo`` (the process that runs a task is the one a signal ends),
    logging to ``log``; with ``wait``, returns once the worker says it is ready."""
    extra = env or {}
    env = {**os.environ, "DATABASE_URL": test_database_url(), "CELERY_BROKER_URL": broker,
           "SECRET_KEY": django_settings.SECRET_KEY, "DB_CONN_MAX_AGE": "0", **extra}
    if "REDIS_URL" not in extra:
        env.pop("REDIS_URL", None)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "brokerage", "worker", "--pool=solo", "--loglevel=INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}-{os.getpid()}@%h"],
            cwd=Path(django_settings.BASE_DIR), env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    process.log = log
    if wait:
        wait_for(lambda: "ready." in log.read_text() or process.poll() is not None, STARTUP_SECONDS)
        assert process.poll() is None, log.read_text()
    return process


def worker_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
