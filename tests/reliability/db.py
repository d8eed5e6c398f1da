"""Freezing the matcher inside its transaction, so faults land mid-batch every time rather than by luck.

A test takes a row lock (``RowLock``, on a second connection) on a row the matcher's batch must update: the
market row, whose batch counter is the batch's last write, or a balance row. The matcher matches in memory,
writes what comes before that row and blocks on it while holding the market's advisory lock: the batch is open
and uncommitted for as long as the test wants. ``pg_locks`` says which backend holds the advisory lock, so the
test can kill that worker or terminate that backend, then let go.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
import psycopg.sql
from django.db import connection
from django.db.models import Model

from tests.trading.workers import test_database_url
from trading.services import LOCK_NAMESPACE

WAIT_SECONDS = 60


def wait_until(condition, *, seconds: float = WAIT_SECONDS, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting until {what}")
        time.sleep(0.05)


def in_thread(pool: ThreadPoolExecutor, fn, *args, **kwargs) -> Future:
    """Run ``fn`` on its own database connection in ``pool``, closing the connection when done."""

    def run():
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return pool.submit(run)


def backend_pid() -> int:
    """This thread's database backend."""
    connection.ensure_connection()
    return connection.connection.info.backend_pid


class RowLock:
    """``SELECT ... FOR NO KEY UPDATE`` of one row in a transaction of its own, until ``release()``: it blocks
    updates and locks of the row, not inserts of rows that reference it."""

    def __init__(self, row: Model):
        self.connection = psycopg.connect(test_database_url())
        table = psycopg.sql.Identifier(row._meta.db_table)
        self.connection.execute(psycopg.sql.SQL("SELECT id FROM {} WHERE id = %s FOR NO KEY UPDATE").format(table),
                                [row.pk])
        self.pid = self.connection.info.backend_pid

    def release(self) -> None:
        if not self.connection.closed:
            self.connection.rollback()
            self.connection.close()

    def __enter__(self) -> RowLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def matcher_pid(market_id: int) -> int | None:
    """The backend holding the market's advisory lock, i.e. the one inside a matcher batch, if any."""
    rows = _rows(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s AND objid = %s "
        "AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [LOCK_NAMESPACE, market_id],
    )
    return rows[0][0] if rows else None


def waiting_on(pid: int) -> list[int]:
    """Backends blocked by ``pid``."""
    return [row[0] for row in _rows("SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid])]


def backend_alive(pid: int) -> bool:
    return bool(_rows("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]))


def matcher_frozen(market_id: int, lock: RowLock) -> int:
    """Wait until a matcher of ``market_id`` is inside its batch, blocked on ``lock``; return its backend pid."""
    found: list[int] = []

    def frozen() -> bool:
        pid = matcher_pid(market_id)
        if pid is not None and pid in waiting_on(lock.pid):
            found.append(pid)
            return True
        return False

    wait_until(frozen, what=f"a matcher of market {market_id} is blocked inside its batch")
    return found[0]


def backend_terminate(pid: int) -> None:
    _rows("SELECT pg_terminate_backend(%s)", [pid])


def has_written(pid: int, table: str) -> bool:
    """Whether backend ``pid`` has written rows of ``table`` in its open transaction (uncommitted)."""
    return bool(_rows("SELECT 1 FROM pg_locks WHERE pid = %s AND relation = %s::regclass AND mode = 'RowExclusiveLock'",
                      [pid, table]))
