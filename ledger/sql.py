"""Every hand-written statement of the ledger's write path, the PostgreSQL statement and its portable twin side by
side. The public name of each pair picks by ``connection.vendor``; the ``*_postgresql`` and ``*_portable`` variants
can be called directly (the portable twins are plain ORM or standard SQL, so they run on PostgreSQL too, and
``tests/ledger/test_sql_parity.py`` checks that both give the same rows and the same refusals).

Only this module (and ``core/db.py``) asks which database it runs on.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db import connection
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from core.db import models_select, prepared_cursor
from ledger.errors import InsufficientFunds
from ledger.models import Balance, Hold, HoldStatus, JournalEntry, LedgerAccount, Purpose
from ledger.selectors import amount_text

ZERO = Decimal(0)


def _on_postgresql() -> bool:
    return connection.vendor == "postgresql"


# --- entries already stored -------------------------------------------------------------------------------


def entries_existing(keys: list[str]) -> dict[str, JournalEntry]:
    """The entries already stored under these keys."""
    if _on_postgresql():
        return entries_existing_postgresql(keys)
    return entries_existing_portable(keys)


def entries_existing_postgresql(keys: list[str]) -> dict[str, JournalEntry]:
    """Asked first with one array parameter: a batch's keys are almost always new, and that answer should not cost
    a query compiled for hundreds of placeholders."""
    if not keys:
        return {}
    with prepared_cursor() as cursor:
        cursor.execute("SELECT key FROM ledger_journalentry WHERE key = ANY(%s::varchar[])", [keys])
        keys = [key for (key,) in cursor.fetchall()]
    return entries_existing_portable(keys)


def entries_existing_portable(keys: list[str]) -> dict[str, JournalEntry]:
    if not keys:
        return {}
    return {e.key: e for e in JournalEntry.objects.filter(key__in=keys)}


# --- ledger accounts ----------------------------------------------------------------------------------------


def ledger_accounts_of(client_ids: Iterable[int], code: str) -> list[LedgerAccount]:
    """The ledger accounts of these client accounts, and the account with ``code`` if it exists: one read (the
    matcher's batch needs its clients' accounts and the fee account)."""
    if _on_postgresql():
        return ledger_accounts_of_postgresql(client_ids, code)
    return ledger_accounts_of_portable(client_ids, code)


def ledger_accounts_of_postgresql(client_ids: Iterable[int], code: str) -> list[LedgerAccount]:
    return models_select(LedgerAccount, "m.client_id = ANY(%s::bigint[]) OR m.code = %s", [list(client_ids), code])


def ledger_accounts_of_portable(client_ids: Iterable[int], code: str) -> list[LedgerAccount]:
    return list(LedgerAccount.objects.filter(Q(client_id__in=list(client_ids)) | Q(code=code)))


# --- deferred checks --------------------------------------------------------------------------------------


def deferred_checks_run() -> None:
    """Run now what PostgreSQL would check at commit (entries balance and have postings, foreign keys), then
    defer again: the commit, with the balance rows locked, has that much less to do."""
    if _on_postgresql():
        deferred_checks_run_postgresql()
    else:
        deferred_checks_run_portable()


def deferred_checks_run_postgresql() -> None:
    """Every deferrable constraint of this schema is initially deferred, so ALL DEFERRED restores the default."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def deferred_checks_run_portable() -> None:
    """Nothing to run early: whatever the database checks, it checks at commit."""


# --- holds: release and capture ---------------------------------------------------------------------------


def holds_release_rows(hold_ids: list[int], now) -> list[tuple[int, int, str, Decimal]]:
    """Lock the still-active holds among ``hold_ids`` in id order and release them; returns (id, account id,
    asset, what remained) per hold released."""
    if _on_postgresql():
        return holds_release_rows_postgresql(hold_ids, now)
    return holds_release_rows_portable(hold_ids, now)


def holds_release_rows_postgresql(hold_ids: list[int], now) -> list[tuple[int, int, str, Decimal]]:
    """One statement."""
    with prepared_cursor() as cursor:
        cursor.execute(
            "WITH locked AS (SELECT id, remaining FROM ledger_hold WHERE id = ANY(%s::bigint[]) AND status = 'active'"
            " ORDER BY id FOR NO KEY UPDATE)"
            " UPDATE ledger_hold AS h SET remaining = 0, status = 'released', updated_at = %s FROM locked"
            " WHERE h.id = locked.id RETURNING h.id, h.account_id, h.asset_id, locked.remaining",
            [hold_ids, now],
        )
        return cursor.fetchall()


def holds_release_rows_portable(hold_ids: list[int], now) -> list[tuple[int, int, str, Decimal]]:
    locked = list(
        Hold.objects.select_for_update(no_key=True).filter(pk__in=hold_ids, status=HoldStatus.ACTIVE)
        .order_by("id").values_list("id", "account_id", "asset_id", "remaining")
    )
    Hold.objects.filter(pk__in=[row[0] for row in locked]).update(
        remaining=ZERO, status=HoldStatus.RELEASED, updated_at=now
    )
    return locked


def captures_apply(per_hold: dict[int, Decimal], now) -> int:
    """Subtract each amount from its still-active hold if enough remains; returns how many holds were updated."""
    if _on_postgresql():
        return captures_apply_postgresql(per_hold, now)
    return captures_apply_portable(per_hold, now)


def captures_apply_postgresql(per_hold: dict[int, Decimal], now) -> int:
    """One statement (the matcher captures hundreds of holds per batch)."""
    with prepared_cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_hold AS h SET remaining = h.remaining - v.amount, updated_at = %s, "
            "status = CASE WHEN h.remaining = v.amount THEN 'captured' ELSE 'active' END "
            "FROM unnest(%s::bigint[], %s::numeric[]) AS v(id, amount) "
            "WHERE h.id = v.id AND h.status = 'active' AND h.remaining >= v.amount",
            [now, list(per_hold), list(per_hold.values())],
        )
        return cursor.rowcount


def captures_apply_portable(per_hold: dict[int, Decimal], now) -> int:
    """One statement per hold."""
    updated = 0
    for hold_id, amount in per_hold.items():
        updated += Hold.objects.filter(pk=hold_id, status=HoldStatus.ACTIVE, remaining__gte=amount).update(
            remaining=F("remaining") - amount,
            status=Case(When(remaining=amount, then=Value(HoldStatus.CAPTURED)), default=Value(HoldStatus.ACTIVE)),
            updated_at=now,
        )
    return updated


def hold_delete(hold_id: int) -> None:
    """Raw: the ORM's delete would refuse while the caller's order still refers to the hold (PROTECT)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM ledger_hold WHERE id = %s", [hold_id])


# --- balances: lock and reserve ---------------------------------------------------------------------------


def balances_lock(keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Balance]:
    """Lock the balance rows of these (account id, asset) pairs in id order, creating missing ones.

    One ``SELECT ... ORDER BY id FOR UPDATE`` takes every lock a posting needs, so two transactions touching
    the same balances always lock them in the same order and cannot deadlock on each other.
    """
    keys = list(keys)
    rows = balances_select_for_update(keys)
    missing = [k for k in keys if k not in rows]
    if missing:
        client_accounts = set(
            LedgerAccount.objects.filter(pk__in={a for a, _ in missing}, purpose=Purpose.CLIENT)
            .values_list("pk", flat=True)
        )
        Balance.objects.bulk_create(
            [Balance(account_id=a, asset_id=s, enforce_floor=a in client_accounts) for a, s in missing],
            ignore_conflicts=True,
        )
        rows = balances_select_for_update(keys)
    return rows


def balances_select_for_update(keys: list[tuple[int, str]]) -> dict[tuple[int, str], Balance]:
    """The existing balance rows of these (account id, asset) pairs, locked in id order."""
    if _on_postgresql():
        return balances_select_for_update_postgresql(keys)
    return balances_select_for_update_portable(keys)


def balances_select_for_update_postgresql(keys: list[tuple[int, str]]) -> dict[tuple[int, str], Balance]:
    """The pairs travel as two array parameters, whatever their number."""
    match = "(account_id, asset_id) IN (SELECT * FROM unnest(%s::bigint[], %s::varchar[]))"
    return _balances_select(match, [list(column) for column in zip(*keys)], keys)


def balances_select_for_update_portable(keys: list[tuple[int, str]]) -> dict[tuple[int, str], Balance]:
    match = f"(account_id, asset_id) IN ({', '.join(['(%s, %s)'] * len(keys))})"
    return _balances_select(match, [value for key in keys for value in key], keys)


def _balances_select(match: str, params: list, keys: list[tuple[int, str]]) -> dict[tuple[int, str], Balance]:
    if not keys:
        return {}
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = f"SELECT * FROM ledger_balance WHERE {match} ORDER BY id{lock}"
    return {(b.account_id, b.asset_id): b for b in Balance.objects.raw(sql, params)}


def balance_reserve(account: LedgerAccount, asset: str, amount: Decimal, *, field: str) -> None:
    """Add ``amount`` to what the balance holds if that much is available above its floor, or raise
    InsufficientFunds naming ``field``."""
    if _on_postgresql():
        balance_reserve_postgresql(account, asset, amount, field=field)
    else:
        balance_reserve_portable(account, asset, amount, field=field)


def balance_reserve_postgresql(account: LedgerAccount, asset: str, amount: Decimal, *, field: str) -> None:
    """One UPDATE locks, checks and reserves (it takes the same row lock as ``SELECT ... FOR UPDATE`` and sees the
    latest committed row); a missing row or a refusal takes the lock-and-check path, which creates the row or
    names the shortfall."""
    with connection.cursor() as cursor:
        cursor.execute(*balance_reserve_statement(account.pk, asset, amount))
        if cursor.rowcount == 1:
            return
    balance_reserve_portable(account, asset, amount, field=field)


def balance_reserve_statement(account_id: int, asset: str, amount: Decimal) -> tuple[str, list]:
    """The reservation on PostgreSQL as (text, parameters): it updates one row if the balance exists and
    ``amount`` is available, none otherwise (then ``balance_reserve_portable`` creates the row or names the
    shortfall). For a caller that sends it as the last part of one statement with its other writes."""
    return ("UPDATE ledger_balance SET held = held + %s, updated_at = %s WHERE account_id = %s AND asset_id = %s"
            " AND (NOT enforce_floor OR amount - held - %s >= -credit_limit)",
            [amount, timezone.now(), account_id, asset, amount])


def balance_reserve_portable(account: LedgerAccount, asset: str, amount: Decimal, *, field: str) -> None:
    """Lock, check, reserve."""
    balance = balances_lock([(account.pk, asset)])[(account.pk, asset)]
    if balance.enforce_floor and balance.amount - balance.held - amount < -balance.credit_limit:
        raise InsufficientFunds(
            f"Insufficient available {asset}: {amount_text(balance.amount - balance.held, asset)} "
            f"available, {amount_text(amount, asset)} needed.",
            field=field,
        )
    balance.held += amount
    balance.save(update_fields=["held", "updated_at"])
