"""Two Celery beats on one database: only the one holding the beat lock schedules; when it is SIGKILLed the
other takes over within seconds. No periodic task is sent twice for one interval."""

from __future__ import annotations

import re
import time

import pytest

from tests.ops.servers import base_env, celery_process, stop
from tests.trading.workers import broker_url, wait_for  # noqa: F401 - fixture

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

INTERVAL = 1.0
SENT = re.compile(r'"time": "([^"]+)".*Sending due task sweep-markets')


def _sends(log) -> list[str]:
    return SENT.findall(log.read_text())


def test_two_beats_never_both_schedule_and_the_standby_takes_over(broker_url, tmp_path):  # noqa: F811
    env = base_env(CELERY_BROKER_URL=broker_url, SWEEP_INTERVAL_SECONDS=str(INTERVAL))
    logs = [tmp_path / "beat-a.log", tmp_path / "beat-b.log"]
    # At DEBUG: the beat's routine "Sending due task sweep-markets" lines are DEBUG records (core.log_filters).
    beats = [celery_process("beat", log, env, "--schedule", str(tmp_path / f"s{i}"), "--max-interval", "1",
                            "--loglevel=DEBUG")
             for i, log in enumerate(logs)]
    try:
        assert wait_for(lambda: sum(len(_sends(log)) for log in logs) >= 6, 60), logs[0].read_text()[-2000:]
        counts = [len(_sends(log)) for log in logs]
        leader = 0 if counts[0] else 1
        standby = 1 - leader
        assert counts[standby] == 0, counts  # the standby never sent anything
        assert "standby, another beat holds the lock" in logs[standby].read_text()

        started = time.monotonic()
        window_start = len(_sends(logs[leader]))
        time.sleep(4)
        sent_in_window = len(_sends(logs[leader])) - window_start
        assert sent_in_window <= 4 / INTERVAL + 1  # once per interval, not twice
        assert len(_sends(logs[standby])) == 0

        beats[leader].kill()  # SIGKILL: its database session ends, and with it the lock
        beats[leader].wait(timeout=10)
        killed_at = time.monotonic()
        assert wait_for(lambda: len(_sends(logs[standby])) >= 3, 30), logs[standby].read_text()[-2000:]
        assert "took the beat lock" in logs[standby].read_text()
        took_over_in = time.monotonic() - killed_at
        assert took_over_in < 3 / INTERVAL + 6, took_over_in
        assert time.monotonic() - started < 60
    finally:
        for beat in beats:
            stop(beat)
