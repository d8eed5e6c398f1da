"""A real Celery worker process killed with SIGKILL in the middle of a matcher batch: its transaction never
commits, and a new worker, woken by the periodic sweep, redoes the batch. Nothing is lost, nothing is settled
twice, and wake-ups delivered again afterwards find nothing to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.reliability.crossing import Crossing, wakeups_lost  # noqa: F401 - fixture
from tests.reliability.db import RowLock, backend_alive, has_written, matcher_frozen, wait_until
from tests.reliability.invariants import assert_books_consistent
from tests.trading.test_worker import _test_database_url, broker_url  # noqa: F401 - fixture
from trading.models import Fill, Order, OrderStatus
from trading.tasks import match_market, sweep_markets

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("wakeups_lost")]

K = 60
TASK_DONE = "Task trading.tasks.match_market["


def _worker(broker: str, log: Path, name: str) -> subprocess.Popen:
    """``celery worker --pool=solo``: the process that runs the task is the one a SIGKILL ends."""
    env = {**os.environ, "DATABASE_URL": _test_database_url(), "CELERY_BROKER_URL": broker,
           "SECRET_KEY": settings.SECRET_KEY, "DB_CONN_MAX_AGE": "0"}
    env.pop("REDIS_URL", None)
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "brokerage", "worker", "--pool=solo", "--loglevel=INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}-{os.getpid()}@%h"],
            cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(broker_url, tmp_path):  # noqa: F811
    crossing = Crossing.place(K)
    market_id = crossing.market.pk

    with RowLock(crossing.market) as lock:
        doomed = _worker(broker_url, tmp_path / "doomed.log", "doomed")
        try:
            match_market.delay(market_id)
            pid = matcher_frozen(market_id, lock)
            assert has_written(pid, "trading_fill")  # the whole batch is written, uncommitted
            doomed.kill()
            assert doomed.wait(timeout=20) == -9
        finally:
            _stop(doomed)
    wait_until(lambda: not backend_alive(pid), what="the killed worker's backend rolled back and went away")
    crossing.assert_untouched()

    log = tmp_path / "rescuer.log"
    rescuer = _worker(broker_url, log, "rescuer")
    try:
        sweep_markets.delay()  # the beat's periodic sweep finds the orders the dead worker left new
        wait_until(lambda: not Order.objects.filter(status=OrderStatus.NEW).exists(), what="the batch is redone")
        match_market.delay(market_id)  # the same wake-up delivered twice more
        match_market.delay(market_id)
        wait_until(lambda: log.read_text().count(TASK_DONE) >= 3, what="the rescuer ran every delivery")
    finally:
        _stop(rescuer)

    assert Fill.objects.count() == K, log.read_text()
    crossing.assert_matched_once()
    assert_books_consistent(deposited=crossing.desk.deposited, matched=True)
