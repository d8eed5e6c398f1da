"""Faults in the middle of a matcher batch: the same wake-up run twice at once, and the database connection
dropped while the batch's transaction is open. Each time: nothing half-done is visible, nothing is lost or
settled twice, and the books reconcile. (A worker process killed mid-batch: ``test_worker_crash.py``.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import InterfaceError, OperationalError

from tests.reliability.crossing import Crossing
from tests.reliability.db import (
    RowLock,
    backend_alive,
    backend_terminate,
    has_written,
    in_thread,
    matcher_frozen,
    wait_until,
    waiting_on,
)
from tests.reliability.invariants import assert_books_consistent
from trading.services import market_match
from trading.tasks import match_market

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("wakeups_lost")]

K = 40
RESULT_SECONDS = 60


def test_a_wake_up_delivered_twice_at_once_matches_and_settles_once():
    crossing = Crossing.place(K)
    with ThreadPoolExecutor(max_workers=2) as pool, RowLock(crossing.market) as lock:
        first = in_thread(pool, match_market, crossing.market.pk)
        first_pid = matcher_frozen(crossing.market.pk, lock)
        second = in_thread(pool, match_market, crossing.market.pk)
        wait_until(lambda: waiting_on(first_pid), what="the second delivery waits for the market lock")
        crossing.assert_untouched()
        lock.release()
        summaries = sorted((f.result(timeout=RESULT_SECONDS) for f in (first, second)), key=lambda s: s["orders"])

    assert [(s["orders"], s["fills"]) for s in summaries] == [(0, 0), (2 * K, K)]
    assert match_market(crossing.market.pk)["orders"] == 0  # a late third delivery finds nothing either
    crossing.assert_matched_once()
    assert_books_consistent(deposited=crossing.desk.deposited, matched=True)


def test_a_matcher_that_finds_the_market_busy_turns_away_at_once():
    crossing = Crossing.place(2)
    with ThreadPoolExecutor(max_workers=1) as pool, RowLock(crossing.market) as lock:
        first = in_thread(pool, market_match, market_id=crossing.market.pk)
        matcher_frozen(crossing.market.pk, lock)
        assert market_match(market_id=crossing.market.pk).locked is False
        lock.release()
        assert first.result(timeout=RESULT_SECONDS).fills == 2
    crossing.assert_matched_once()


def test_a_connection_dropped_mid_batch_rolls_the_batch_back_and_a_rerun_completes_it():
    crossing = Crossing.place(K)
    with ThreadPoolExecutor(max_workers=1) as pool, RowLock(crossing.market) as lock:
        batch = in_thread(pool, market_match, market_id=crossing.market.pk, wait=True)
        pid = matcher_frozen(crossing.market.pk, lock)
        assert has_written(pid, "trading_fill")  # the whole batch is written, uncommitted
        backend_terminate(pid)
        error = batch.exception(timeout=RESULT_SECONDS)
    assert isinstance(error, (OperationalError, InterfaceError)), error
    wait_until(lambda: not backend_alive(pid), what="the terminated backend is gone")

    crossing.assert_untouched()
    assert_books_consistent(deposited=crossing.desk.deposited)
    crossing.desk.match_all()
    crossing.assert_matched_once()
    assert_books_consistent(deposited=crossing.desk.deposited, matched=True)
