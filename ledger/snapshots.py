"""End-of-day balance snapshots: the natural balance of every (ledger account, asset) at the end of a UTC day.

A snapshot of day D covers exactly the postings with ``created_at < day_end(D)``. It is computed in one SQL
statement from the previous snapshot plus that interval's postings (or from all postings when there is no
earlier snapshot), so the work per day is bounded by the day's postings. Taking a day twice changes nothing.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from core.exceptions import DomainError
from ledger.dates import day_end, day_start, utc_date
from ledger.errors import Code
from ledger.models import BalanceSnapshot
from ledger.selectors import natural_sign_sql

logger = logging.getLogger(__name__)

SNAPSHOT_INSERT_SQL = """
INSERT INTO ledger_balancesnapshot (day, account_id, asset_id, amount, last_posting_id, created_at)
SELECT %s, c.account_id, c.asset_id, SUM(c.amount), MAX(c.last_posting_id), %s
  FROM (
      SELECT s.account_id, s.asset_id, s.amount, s.last_posting_id
        FROM ledger_balancesnapshot s
       WHERE s.day = %s
      UNION ALL
      SELECT p.account_id, p.asset_id, SUM(p.amount) * {sign}, MAX(p.id)
        FROM ledger_posting p JOIN ledger_ledgeraccount a ON a.id = p.account_id
       WHERE p.created_at >= %s AND p.created_at < %s
       GROUP BY p.account_id, p.asset_id, a.type
  ) c
 WHERE 1 = 1
 GROUP BY c.account_id, c.asset_id
ON CONFLICT (day, account_id, asset_id) DO NOTHING
""".format(sign=natural_sign_sql("a.type"))

# Every posting ever made is after this instant; the lower bound when no earlier snapshot exists.
BEGINNING_OF_TIME = day_start(date.min)


def last_complete_day() -> date:
    """The UTC day that ended most recently: what the end-of-day job snapshots."""
    return utc_date(timezone.now()) - timedelta(days=1)


def snapshot_base_day(*, before: date) -> date | None:
    """The latest day earlier than ``before`` that has snapshots, the starting point for ``before``."""
    return BalanceSnapshot.objects.filter(day__lt=before).aggregate(day=Max("day"))["day"]


@transaction.atomic
def balance_snapshot_take(*, day: date) -> int:
    """Write the end-of-day snapshot of ``day`` for every (account, asset) with postings; returns rows added.

    Idempotent: rows that already exist for the day are kept as they are. A day that has not ended yet is
    refused, since its postings are still coming in.
    """
    if day_end(day) > timezone.now():
        raise DomainError(f"The day {day} has not ended yet (UTC); it cannot be snapshotted.", code=Code.DAY_NOT_OVER,
                          field="day")
    base = snapshot_base_day(before=day)
    since = day_end(base) if base else BEGINNING_OF_TIME
    with connection.cursor() as cursor:
        cursor.execute(SNAPSHOT_INSERT_SQL, [day, timezone.now(), base, since, day_end(day)])
        added = cursor.rowcount
    logger.info("balance snapshot of %s: %s rows added (built on %s)", day, added, base or "all postings")
    return added
