"""Reconciliation: prove the books are right, or record exactly where they are not.

``reconciliation_run`` runs every check, records one ``ReconciliationRun`` with a summary per check and one
``ReconciliationBreak`` per discrepancy, and logs each break at ERROR level (the alert). Each check is a single
SQL statement that aggregates in the database and returns only what differs, so the work stays bounded and each
check sees one consistent snapshot of the tables even while trading goes on.

Checks (the source of truth is named first; ``expected`` on a break is what it says, ``actual`` what was found):
- ``balance_vs_postings``: every balance row equals the sum of its postings.
- ``held_vs_holds``: every ``Balance.held`` equals the sum of its active holds.
- ``holds_vs_commitments``: every active hold belongs to an open order or a pending withdrawal, and every open
  order and pending withdrawal still has its active hold.
- ``trial_balance``: postings sum to zero per asset.
- ``custody_vs_liabilities``: per asset, custody equals what the firm owes (clients, fee revenue, other
  liabilities and equity, less expenses), and custody covers the client liabilities.
- ``snapshot_vs_postings``: the latest end-of-day snapshot equals the postings up to the end of its day.
- ``inventory_vs_trades``: per asset, the firm's principal inventory (``firm:inventory``) equals what its sources
  say: executed quotes, stablecoin conversions and the firm's funding of the inventory.
- ``inventory_within_limits``: per asset, the inventory position is within the exposure limits (a position in
  an asset without limits, or beyond them after operations lowered a limit, is reported).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import OPEN_FUNDING_STATUSES, Withdrawal
from audit.services import audit_record
from ledger.dates import day_end
from ledger.models import (
    BalanceSnapshot,
    Hold,
    HoldStatus,
    LedgerAccount,
    Purpose,
    ReconciliationBreak,
    ReconciliationRun,
)
from ledger.money import plain
from ledger.selectors import balance_drift, natural_sign_sql, trial_balance
from trading.models import OPEN_STATUSES, InventoryLimit, Order

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
MAX_BREAKS_PER_CHECK = 1000

BALANCES = "balance_vs_postings"
HELD = "held_vs_holds"
COMMITMENTS = "holds_vs_commitments"
TRIAL_BALANCE = "trial_balance"
CUSTODY = "custody_vs_liabilities"
SNAPSHOT = "snapshot_vs_postings"
INVENTORY = "inventory_vs_trades"
INVENTORY_LIMITS = "inventory_within_limits"
ERROR = "error"


@dataclass(frozen=True)
class Break:
    check: str
    detail: str
    account_id: int | None = None
    asset: str | None = None
    expected: Decimal | None = None
    actual: Decimal | None = None


def reconciliation_run(*, acting_user=None) -> ReconciliationRun:
    """Run every check now and record the outcome. ``run.ok`` is False when anything does not reconcile."""
    run = ReconciliationRun.objects.create(triggered_by=acting_user if getattr(acting_user, "pk", None) else None)
    checks: dict[str, dict] = {}
    breaks: list[Break] = []
    try:
        for check in (_check_balances, _check_commitments, _check_trial_balance, _check_custody, _check_snapshot,
                      _check_inventory, _check_inventory_limits):
            summary, found = check()
            checks.update(summary)
            breaks.extend(found)
    except Exception as exc:
        logger.exception("reconciliation run %s could not complete", run.pk)
        _record(run, checks, [*breaks, Break(ERROR, f"The run did not complete: {exc!r}"[:500])], acting_user)
        raise
    _record(run, checks, breaks, acting_user)
    return run


def reconciliation_schedule(*, acting_user) -> None:
    """Ask a worker to run the reconciliation once the current transaction commits (the admin's button)."""
    from compliance.tasks import reconciliation_run as task

    user_id = getattr(acting_user, "pk", None)
    transaction.on_commit(lambda: task.delay(user_id=user_id))


@transaction.atomic
def _record(run: ReconciliationRun, checks: dict, breaks: list[Break], acting_user) -> None:
    ReconciliationBreak.objects.bulk_create(
        ReconciliationBreak(
            run=run, check_name=b.check, account_id=b.account_id, asset_id=b.asset,
            expected=b.expected, actual=b.actual, detail=b.detail[:500],
        )
        for b in breaks
    )
    run.ok = not breaks
    run.checks = checks
    run.finished_at = timezone.now()
    run.save(update_fields=["ok", "checks", "finished_at"])
    audit_record(acting_user=acting_user, action="reconciliation.run", obj=run,
                 after={"ok": run.ok, "breaks": len(breaks)})
    for b in breaks:
        logger.error("reconciliation run %s break %s: %s", run.pk, b.check, b.detail)
    if breaks:
        logger.error("reconciliation run %s found %s break(s)", run.pk, len(breaks))
    else:
        logger.info("reconciliation run %s: the books reconcile", run.pk)


def _account_codes(ids) -> dict[int, str]:
    return dict(LedgerAccount.objects.filter(pk__in=set(ids)).values_list("pk", "code"))


def _check_balances() -> tuple[dict, list[Break]]:
    drifts = balance_drift(limit=MAX_BREAKS_PER_CHECK)
    codes = _account_codes(d.account_id for d in drifts)
    breaks = []
    for d in drifts:
        stored, recomputed = plain(d.stored), plain(d.recomputed)
        if d.field == "amount":
            detail = f"{codes[d.account_id]} {d.asset}: balance table says {stored}, postings sum to {recomputed}"
            check = BALANCES
        else:
            detail = f"{codes[d.account_id]} {d.asset}: held says {stored}, active holds sum to {recomputed}"
            check = HELD
        breaks.append(Break(check, detail, d.account_id, d.asset, expected=d.recomputed, actual=d.stored))
    summary = {
        BALANCES: {"breaks": sum(b.check == BALANCES for b in breaks)},
        HELD: {"breaks": sum(b.check == HELD for b in breaks)},
    }
    return summary, breaks


def _check_commitments() -> tuple[dict, list[Break]]:
    open_order = Order.objects.filter(hold_id=OuterRef("pk"), status__in=OPEN_STATUSES)
    pending_withdrawal = Withdrawal.objects.filter(hold_id=OuterRef("pk"), status__in=OPEN_FUNDING_STATUSES)
    stray_holds = (
        Hold.objects.filter(status=HoldStatus.ACTIVE)
        .exclude(Exists(open_order))
        .exclude(Exists(pending_withdrawal))
        .order_by("id")
        .values_list("id", "key", "account_id", "account__code", "asset_id", "remaining")[:MAX_BREAKS_PER_CHECK]
    )
    breaks = [
        Break(COMMITMENTS, f"Active hold #{hold_id} ({key}) of {code}: {plain(remaining)} {asset} held for no "
                           f"open order or pending withdrawal", account_id, asset, expected=ZERO, actual=remaining)
        for hold_id, key, account_id, code, asset, remaining in stray_holds
    ]
    unheld_orders = (
        Order.objects.filter(status__in=OPEN_STATUSES, hold__isnull=False)
        .exclude(hold__status=HoldStatus.ACTIVE)
        .order_by("id")
        .values_list("id", "status", "hold_id", "hold__account_id", "hold__asset_id")[:MAX_BREAKS_PER_CHECK]
    )
    breaks += [
        Break(COMMITMENTS, f"Order #{order_id} is {status} but its hold #{hold_id} is no longer active",
              account_id, asset)
        for order_id, status, hold_id, account_id, asset in unheld_orders
    ]
    unheld_withdrawals = (
        Withdrawal.objects.filter(status__in=OPEN_FUNDING_STATUSES)
        .exclude(hold__status=HoldStatus.ACTIVE)
        .order_by("id")
        .values_list("id", "status", "account__ledger_account", "asset_id", "amount")[:MAX_BREAKS_PER_CHECK]
    )
    breaks += [
        Break(COMMITMENTS, f"Withdrawal #{withdrawal_id} is {status} but has no active hold for its "
                           f"{plain(amount)} {asset}", account_id, asset, expected=amount)
        for withdrawal_id, status, account_id, asset, amount in unheld_withdrawals
    ]
    return {COMMITMENTS: {"breaks": len(breaks)}}, breaks


def _check_trial_balance() -> tuple[dict, list[Break]]:
    totals = trial_balance()
    breaks = [
        Break(TRIAL_BALANCE, f"{asset}: postings sum to {plain(total)}, not zero", None, asset,
              expected=ZERO, actual=total)
        for asset, total in totals.items()
        if total != 0
    ]
    return {TRIAL_BALANCE: {asset: plain(total) for asset, total in totals.items()}}, breaks


CUSTODY_SQL = """
SELECT b.asset_id, a.purpose, SUM(b.amount) FROM ledger_balance b
  JOIN ledger_ledgeraccount a ON a.id = b.account_id
 GROUP BY b.asset_id, a.purpose
 ORDER BY b.asset_id, a.purpose
"""


def _check_custody() -> tuple[dict, list[Break]]:
    """The accounting equation per asset, read from the balance table: custody (what the firm holds) equals
    what it owes (clients, fee revenue, settlement, suspense, equity) less expenses; and custody covers clients."""
    with connection.cursor() as cursor:
        cursor.execute(CUSTODY_SQL)
        rows = cursor.fetchall()
    per_asset: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for asset, purpose, total in rows:
        per_asset[asset][purpose] += Decimal(total)
    summary, breaks = {}, []
    for asset, by_purpose in per_asset.items():
        custody = by_purpose.pop(Purpose.CUSTODY, ZERO)
        clients = by_purpose.get(Purpose.CLIENT, ZERO)
        expense = by_purpose.pop(Purpose.EXPENSE, ZERO)
        owed = sum(by_purpose.values(), ZERO) - expense
        summary[asset] = {"custody": plain(custody), "clients": plain(clients), "owed_less_expenses": plain(owed)}
        if custody != owed:
            breaks.append(Break(CUSTODY, f"{asset}: custody {plain(custody)} differs from liabilities and equity "
                                         f"less expenses {plain(owed)}", None, asset, expected=owed, actual=custody))
        if custody < clients:
            breaks.append(Break(CUSTODY, f"{asset}: custody {plain(custody)} does not cover client liabilities "
                                         f"{plain(clients)}", None, asset, expected=clients, actual=custody))
    return {CUSTODY: summary}, breaks


SNAPSHOT_SQL = """
WITH posted AS (
    SELECT p.account_id, p.asset_id, SUM(p.amount) * {sign} AS total
      FROM ledger_posting p JOIN ledger_ledgeraccount a ON a.id = p.account_id
     WHERE p.created_at < %s
     GROUP BY p.account_id, p.asset_id, a.type
), snap AS (
    SELECT account_id, asset_id, amount FROM ledger_balancesnapshot WHERE day = %s
), pairs AS (
    SELECT account_id, asset_id FROM posted UNION SELECT account_id, asset_id FROM snap
)
SELECT pairs.account_id, pairs.asset_id, posted.total, snap.amount
  FROM pairs
  LEFT JOIN posted ON posted.account_id = pairs.account_id AND posted.asset_id = pairs.asset_id
  LEFT JOIN snap ON snap.account_id = pairs.account_id AND snap.asset_id = pairs.asset_id
 WHERE posted.total IS NULL OR snap.amount IS NULL OR posted.total <> snap.amount
 ORDER BY pairs.account_id, pairs.asset_id
 LIMIT %s
""".format(sign=natural_sign_sql("a.type"))


def _check_snapshot() -> tuple[dict, list[Break]]:
    latest = BalanceSnapshot.objects.order_by("-day").values_list("day", flat=True).first()
    if latest is None:
        return {SNAPSHOT: {"day": None}}, []
    with connection.cursor() as cursor:
        cursor.execute(SNAPSHOT_SQL, [day_end(latest), latest, MAX_BREAKS_PER_CHECK])
        rows = cursor.fetchall()
    codes = _account_codes(r[0] for r in rows)
    breaks = []
    for account_id, asset, posted, snap in rows:
        posted, snap = (None if v is None else Decimal(v) for v in (posted, snap))
        breaks.append(Break(
            SNAPSHOT, f"{codes[account_id]} {asset}: snapshot of {latest} says {_or_missing(snap)}, postings to the "
                      f"end of that day sum to {_or_missing(posted)}", account_id, asset, expected=posted, actual=snap,
        ))
    return {SNAPSHOT: {"day": latest.isoformat(), "breaks": len(breaks)}}, breaks


def _or_missing(amount: Decimal | None) -> str:
    return "nothing" if amount is None else plain(amount)


# The inventory's natural balance per asset from its postings, against the same movements recomputed from the
# records that caused them. One statement: one consistent snapshot of every table it reads.
INVENTORY_SQL = """
WITH expected AS (
    SELECT asset_id, SUM(amount) AS total FROM (
        SELECT m.base_id AS asset_id, CASE WHEN q.side = 'buy' THEN -q.size ELSE q.size END AS amount
          FROM trading_quote q JOIN trading_market m ON m.id = q.market_id WHERE q.status = 'executed'
        UNION ALL
        SELECT m.quote_id, CASE WHEN q.side = 'buy' THEN q.quote_amount ELSE -q.quote_amount END
          FROM trading_quote q JOIN trading_market m ON m.id = q.market_id WHERE q.status = 'executed'
        UNION ALL
        SELECT from_asset_id, amount FROM trading_conversion
        UNION ALL
        SELECT to_asset_id, -amount FROM trading_conversion
        UNION ALL
        SELECT asset_id, amount FROM trading_inventoryfunding
    ) sources GROUP BY asset_id
), posted AS (
    SELECT p.asset_id, SUM(p.amount * {sign}) AS total
      FROM ledger_posting p JOIN ledger_ledgeraccount a ON a.id = p.account_id
     WHERE a.purpose = %s GROUP BY p.asset_id
), pairs AS (
    SELECT asset_id FROM expected UNION SELECT asset_id FROM posted
)
SELECT pairs.asset_id, expected.total, posted.total FROM pairs
  LEFT JOIN expected ON expected.asset_id = pairs.asset_id
  LEFT JOIN posted ON posted.asset_id = pairs.asset_id
 ORDER BY pairs.asset_id
""".format(sign=natural_sign_sql("a.type"))


def _inventory_account_id() -> int | None:
    return LedgerAccount.objects.filter(purpose=Purpose.INVENTORY).values_list("pk", flat=True).first()


def _check_inventory() -> tuple[dict, list[Break]]:
    with connection.cursor() as cursor:
        cursor.execute(INVENTORY_SQL, [Purpose.INVENTORY])
        rows = cursor.fetchall()
    account_id, summary, breaks = _inventory_account_id(), {}, []
    for asset, expected, posted in rows:
        expected, posted = (ZERO if v is None else Decimal(v) for v in (expected, posted))
        summary[asset] = plain(posted)
        if expected != posted:
            breaks.append(Break(INVENTORY, f"{asset}: firm:inventory holds {plain(posted)}, its quotes, conversions "
                                           f"and funding sum to {plain(expected)}", account_id, asset,
                                expected=expected, actual=posted))
    return {INVENTORY: summary}, breaks


def _check_inventory_limits() -> tuple[dict, list[Break]]:
    held = dict(LedgerAccount.objects.filter(purpose=Purpose.INVENTORY).values_list("balances__asset_id",
                                                                                    "balances__amount"))
    held.pop(None, None)
    limits = {limit.asset_id: limit for limit in InventoryLimit.objects.all()}
    account_id, breaks = _inventory_account_id(), []
    for asset, position in sorted(held.items()):
        limit = limits.get(asset)
        if limit is None:
            if position:
                breaks.append(Break(INVENTORY_LIMITS, f"{asset}: the firm holds a position of {plain(position)} "
                                                      f"with no exposure limit", account_id, asset, actual=position))
        elif not -limit.max_short <= position <= limit.max_long:
            breaks.append(Break(INVENTORY_LIMITS, f"{asset}: position {plain(position)} is outside the limits "
                                                  f"-{plain(limit.max_short)} .. {plain(limit.max_long)}",
                                account_id, asset, actual=position))
    return {INVENTORY_LIMITS: {"breaks": len(breaks)}}, breaks
