"""A Celery beat scheduler that is safe to run more than once: only the beat holding a PostgreSQL advisory lock
schedules; the others wait, try again every ``LOCK_RETRY_SECONDS`` and take over when the holder stops.

The lock is session-level on a connection of the scheduler's own, so it is released the moment the leader's
process dies (its connection closes) or loses the database; the leader checks that connection before every
tick and stops scheduling as soon as it fails. Two beats therefore never schedule at the same time, which a
plain ``celery beat`` started twice (or django-celery-beat's database scheduler) would do.

On taking over, the schedule starts afresh from now: interval tasks run at their next interval, crontab tasks at
their next time. A crontab run due in the few seconds between a leader's death and the takeover is skipped
until its next time (the nightly jobs can be run by hand: ``manage.py reconcile``, ``manage.py
snapshot_balances``). The embedded SQLite default has no lock: its single beat always leads.
"""

from __future__ import annotations

import logging

from celery.beat import Scheduler
from django.db import DatabaseError, connections

from core.db import session_lock_try, vendor_is_postgresql

logger = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x6265  # "be"(at)
LOCK_KEY = 1
LOCK_RETRY_SECONDS = 1.0


class LeaderScheduler(Scheduler):
    def __init__(self, *args, **kwargs):
        self._lock_connection = None
        self._leading = False
        self._standby_logged = False
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs):
        if not self._leader():
            return LOCK_RETRY_SECONDS
        return min(super().tick(*args, **kwargs), LOCK_RETRY_SECONDS * 5)

    def _leader(self) -> bool:
        if self._leading:
            if self._lock_connection.is_usable():
                return True
            logger.error("beat: lost the database connection that holds the beat lock; no longer scheduling")
            self._drop()
            return False
        try:
            if self._lock_connection is None:
                self._lock_connection = connections.create_connection("default")
            if not vendor_is_postgresql(self._lock_connection):
                acquired = True
            else:
                acquired = session_lock_try(self._lock_connection, LOCK_NAMESPACE, LOCK_KEY)
        except DatabaseError:
            logger.warning("beat: cannot reach the database to take the beat lock; retrying", exc_info=True)
            self._drop()
            return False
        if not acquired:
            if not self._standby_logged:
                logger.info("beat: standby, another beat holds the lock")
                self._standby_logged = True
            return False
        logger.info("beat: took the beat lock; scheduling from now")
        self._leading, self._standby_logged = True, False
        self.data = {}  # start the schedule afresh (see the module doc)
        self.setup_schedule()
        self._heap = None
        return True

    def _drop(self) -> None:
        self._leading = False
        if self._lock_connection is not None:
            try:
                self._lock_connection.close()
            except DatabaseError:
                pass
            self._lock_connection = None

    def close(self):
        self._drop()
        super().close()
