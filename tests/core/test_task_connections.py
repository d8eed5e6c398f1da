"""A Celery worker keeps its database connection between tasks (brokerage/celery.py, CELERY_DB_REUSE_MAX), and
closes it after a task as Django does after a request: when it is past CONN_MAX_AGE or broke."""

import time

import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from brokerage.celery import app
from trading.tasks import match_market

pytestmark = pytest.mark.django_db(transaction=True)


class EagerRequest:
    is_eager = True


class EagerTask:
    request = EagerRequest()


def task_ran(task=match_market) -> None:
    """What the worker signals around a task."""
    signals.task_prerun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
    signals.task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={}, retval=None, state="SUCCESS")


def open_connection():
    connection.ensure_connection()
    return connection.connection


def test_celerys_fixup_keeps_the_connection_with_the_setting():
    raw = open_connection()
    fixup = DjangoWorkerFixup(app)
    for _ in range(10):
        fixup.close_database()
    assert connection.connection is raw


def test_without_the_setting_celerys_fixup_would_close_it_after_every_task(settings):
    open_connection()
    fixup = DjangoWorkerFixup(app)
    fixup.db_reuse_max = None  # Celery's default
    fixup.close_database()
    assert connection.connection is None


def test_a_task_leaves_a_sound_connection_open():
    raw = open_connection()
    task_ran()
    task_ran()
    assert connection.connection is raw


def test_a_task_closes_a_connection_past_its_age():
    open_connection()
    connection.close_at = time.monotonic() - 1  # CONN_MAX_AGE elapsed
    task_ran()
    assert connection.connection is None


def test_a_task_run_in_process_leaves_the_callers_connection_alone():
    raw = open_connection()
    connection.close_at = time.monotonic() - 1
    task_ran(EagerTask())
    assert connection.connection is raw
