"""A real Celery worker process killed with SIGKILL in the middle of a matcher batch: its transaction never
commits, and a new worker, woken by the periodic sweep, redoes the batch. Nothing is lost, nothing is settled
twice, and wake-ups delivered again afterwards find nothing to do."""

from __future__ import annotations

import pytest

from tests.reliability.crossing import Crossing
from tests.reliability.db import RowLock, backend_alive, has_written, matcher_frozen, wait_until
from tests.reliability.invariants import assert_books_consistent
from tests.trading.workers import broker_url, worker_start, worker_stop  # noqa: F401 - fixture
from trading.models import Fill, Order, OrderStatus
from trading.tasks import match_market, sweep_markets

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("wakeups_lost")]

K = 60
TASK_DONE = "Task trading.tasks.match_market["


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(broker_url, tmp_path):  # noqa: F811
    crossing = Crossing.place(K)
    market_id = crossing.market.pk

    with RowLock(crossing.market) as lock:
        doomed = worker_start(broker_url, tmp_path / "doomed.log", "doomed", wait=False)
        try:
            match_market.delay(market_id)
            pid = matcher_frozen(market_id, lock)
            assert has_written(pid, "trading_fill")  # the whole batch is written, uncommitted
            doomed.kill()
            assert doomed.wait(timeout=20) == -9
        finally:
            worker_stop(doomed)
    wait_until(lambda: not backend_alive(pid), what="the killed worker's backend rolled back and went away")
    crossing.assert_untouched()

    log = tmp_path / "rescuer.log"
    rescuer = worker_start(broker_url, log, "rescuer", wait=False)
    try:
        sweep_markets.delay()  # the beat's periodic sweep finds the orders the dead worker left new
        wait_until(lambda: not Order.objects.filter(status=OrderStatus.NEW).exists(), what="the batch is redone")
        match_market.delay(market_id)  # the same wake-up delivered twice more
        match_market.delay(market_id)
        wait_until(lambda: log.read_text().count(TASK_DONE) >= 3, what="the rescuer ran every delivery")
    finally:
        worker_stop(rescuer)

    assert Fill.objects.count() == K, log.read_text()
    crossing.assert_matched_once()
    assert_books_consistent(deposited=crossing.desk.deposited, matched=True)
