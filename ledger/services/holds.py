"""Holds: reserve part of an available balance (open orders, pending withdrawals) and give it back."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.db import rows_insert
from ledger import sql
from ledger.errors import Code, IdempotencyConflict, InsufficientFunds, InvalidAmount, LedgerError
from ledger.models import Asset, Hold, HoldStatus, LedgerAccount
from ledger.money import require_exact
from ledger.selectors import asset_precisions
from ledger.services.posting import _apply_to_balances, _code, _release_holds


@transaction.atomic
def hold_place(*, key: str, account: LedgerAccount, asset: str | Asset, amount: Decimal, reason: str = "") -> Hold:
    """Reserve part of an available balance. Replaying a key returns the original hold."""
    asset = _code(asset)
    existing = Hold.objects.filter(key=key).first()
    if existing is not None:
        if (existing.account_id, existing.asset_id, existing.amount) != (account.pk, asset, amount):
            raise IdempotencyConflict(f"Hold key {key!r} was already used for another hold.", field="key")
        return existing
    with hold_placing(key=key, account=account, asset=asset, amount=amount, reason=reason) as hold:
        pass
    return hold


@contextmanager
def hold_placing(*, key: str, account: LedgerAccount, asset: str | Asset, amount: Decimal,
                 reason: str = "", field: str = "amount") -> Iterator[Hold]:
    """A new hold with the reservation as the last write: the hold row is inserted and yielded (nothing reserved
    yet) so the caller can write what refers to it (the order); when the block ends, the balance row is locked and
    ``amount`` reserved, or the hold row is removed and InsufficientFunds raised (naming the caller's ``field``).

    No replay lookup and no savepoint, for a caller whose own idempotency rules out a replay (order placement:
    the order's (account, client order id) is unique, and so is the hold key derived from it). It must run inside
    the caller's transaction; a key used before is an IntegrityError.

    Why: a client's balance row is locked by each of its order placements and by matcher batches that settle its
    fills; reserving last keeps it locked only from this update to the caller's commit. If the block itself
    fails, the caller's transaction must roll back (an exception leaving ``transaction.atomic`` does that).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("hold_placing must run inside the caller's transaction")
    hold = hold_new(key=key, account=account, asset=asset, amount=amount, reason=reason)
    _hold_insert(hold)
    yield hold
    try:
        sql.balance_reserve(account, asset, amount, field=field)
    except InsufficientFunds:
        # The caller's transaction rolls back with this error anyway; this only keeps a caught refusal clean.
        sql.hold_delete(hold.pk)
        raise


def balances_lock_for_holds(*, account: LedgerAccount, assets: Iterable[str | Asset]) -> None:
    """Lock the account's balance rows of ``assets`` now, in id order, in the caller's transaction, which will then
    place several holds on them (a batch of orders). Each hold's reservation locks its row, in the holds' order,
    until the commit: a transaction holding one row while it waits for another could deadlock with one (a matcher
    batch) that locks both in id order. Missing rows are not created: nothing can be reserved from them."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("balances_lock_for_holds must run inside the caller's transaction")
    sql.balances_select_for_update([(account.pk, asset) for asset in sorted({_code(a) for a in assets})])


def hold_new(*, key: str, account: LedgerAccount, asset: str | Asset, amount: Decimal, reason: str = "",
             pk: int | None = None) -> Hold:
    """An active hold of ``amount``, checked (positive, within the asset's precision) but not saved: for
    ``hold_placing``, and for order placement on PostgreSQL, which inserts it and reserves its amount together
    with its other writes (``trading.sql.placement_write``, ``ledger.sql.balance_reserve_statement``).
    ``pk``: an id taken from the table's sequence beforehand."""
    asset = _code(asset)
    if amount <= 0:
        raise InvalidAmount("A hold must be positive.", field="amount")
    require_exact(amount, asset_precisions([asset])[asset], field="amount")
    now = timezone.now()
    return Hold(pk=pk, key=key, account=account, asset_id=asset, amount=amount, remaining=amount,
                status=HoldStatus.ACTIVE, reason=reason, created_at=now, updated_at=now)


def hold_reserve_checked(hold: Hold, *, field: str) -> None:
    """Reserve a new hold's amount by locking and checking the balance row: creates a missing row, or raises
    InsufficientFunds naming ``field``. For a caller whose one-statement reservation updated no row."""
    sql.balance_reserve_portable(hold.account, hold.asset_id, hold.amount, field=field)


def hold_reserve_statement(hold: Hold) -> tuple[str, list]:
    """The reservation of a new hold's amount as one UPDATE (text, parameters) that the caller sends in one
    statement with its other writes; it updates no row if the balance is missing or short (then
    ``hold_reserve_checked``)."""
    return sql.balance_reserve_statement(hold.account_id, hold.asset_id, hold.amount)


HOLD_FIELDS = ["key", "account_id", "asset_id", "amount", "remaining", "status", "reason", "created_at", "updated_at"]


def _hold_insert(hold: Hold) -> None:
    [(hold.pk,)] = rows_insert(Hold, HOLD_FIELDS, [[getattr(hold, f) for f in HOLD_FIELDS]], returning=["id"])
    hold._state.adding, hold._state.db = False, connection.alias


@transaction.atomic
def holds_release(*, holds: Sequence[Hold]) -> list[Hold]:
    """Give back all that remains of these holds: order cancels, withdrawals rejected or cancelled. Holds no
    longer active are skipped, so a release is replay-safe. The holds are locked first and the balance rows
    last, as everywhere in the ledger. Returns the holds released (their objects updated)."""
    now = timezone.now()
    released = _release_holds(holds, now)
    if released:
        balances = sql.balances_lock({(account_id, asset) for _, account_id, asset, _ in released})
        _apply_to_balances(balances, [], released, now)
    released_ids = {hold_id for hold_id, *_ in released}
    return [h for h in holds if h.pk in released_ids]


@transaction.atomic
def hold_reduce(*, hold: Hold, amount: Decimal) -> Hold:
    """Give back part of an active hold now: its ``amount`` and ``remaining`` both shrink by ``amount`` (an order
    whose size was reduced needs less). The hold row is locked first and the balance row last, as everywhere in
    the ledger. Returns the hold, its object updated."""
    locked = Hold.objects.select_for_update(no_key=True).get(pk=hold.pk)
    if locked.status != HoldStatus.ACTIVE or not 0 < amount < locked.remaining:
        raise LedgerError(f"Cannot give back {amount} of hold {locked.key}: it has {locked.remaining} remaining "
                          f"({locked.status}).", code=Code.HOLD_EXCEEDED)
    require_exact(amount, asset_precisions([locked.asset_id])[locked.asset_id], field="amount")
    now = timezone.now()
    Hold.objects.filter(pk=hold.pk).update(amount=F("amount") - amount, remaining=F("remaining") - amount,
                                           updated_at=now)
    balances = sql.balances_lock({(locked.account_id, locked.asset_id)})
    _apply_to_balances(balances, [], [(hold.pk, locked.account_id, locked.asset_id, amount)], now)
    hold.amount, hold.remaining, hold.updated_at = locked.amount - amount, locked.remaining - amount, now
    return hold
