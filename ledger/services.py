"""The only writer of the ledger: entries, postings, balances and holds.

Every function here runs in a transaction. Balance rows are locked with ``SELECT ... FOR UPDATE`` in one
statement ordered by id, so concurrent postings never deadlock on each other and never lose an update.
Python validation gives good error messages; the PostgreSQL triggers (migration 0002) are the guarantee.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from audit.services import audit_record, audit_values
from core.db import rows_insert, rows_update
from core.exceptions import Conflict, Forbidden
from ledger.errors import IdempotencyConflict, InsufficientFunds, InvalidAmount, LedgerError, UnbalancedEntry
from ledger.models import (
    AccountType,
    Adjustment,
    AdjustmentStatus,
    Asset,
    Balance,
    Hold,
    HoldStatus,
    JournalEntry,
    LedgerAccount,
    Posting,
    Purpose,
)
from ledger.money import at_precision, require_exact
from ledger.reference import ASSETS, FIRM_ACCOUNTS

ZERO = Decimal(0)



# --- value objects ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leg:
    """One side of an entry: ``amount`` is signed, debit positive, credit negative."""

    account: LedgerAccount
    asset: str
    amount: Decimal


def debit(account: LedgerAccount, asset: str | Asset, amount: Decimal) -> Leg:
    return Leg(account, _code(asset), amount)


def credit(account: LedgerAccount, asset: str | Asset, amount: Decimal) -> Leg:
    return Leg(account, _code(asset), -amount)


@dataclass(frozen=True)
class Capture:
    """Consume ``amount`` of an active hold as part of an entry (the held funds are being spent)."""

    hold: Hold
    amount: Decimal


@dataclass
class EntrySpec:
    key: str
    kind: str
    legs: Sequence[Leg]
    memo: str = ""
    captures: Sequence[Capture] = ()
    reverses: JournalEntry | None = None
    created_by: object = None
    content_hash: str = field(default="", init=False)


def _code(asset: str | Asset) -> str:
    return asset.code if isinstance(asset, Asset) else asset


def _at_asset_precision(amount: Decimal, asset: str) -> str:
    """An amount in an error message as the API shows amounts: at the asset's precision."""
    return at_precision(amount, asset_precisions([asset])[asset])


# --- accounts of the chart --------------------------------------------------------------------------------


def firm_account(purpose: str) -> LedgerAccount:
    """The firm's ledger account for a purpose (custody, fees, ...), created on first use."""
    code, name, account_type = FIRM_ACCOUNTS[purpose]
    account, _ = LedgerAccount.objects.get_or_create(
        code=code, defaults={"name": name, "type": account_type, "purpose": purpose}
    )
    return account


def client_ledger_account_create(*, client) -> LedgerAccount:
    """What the firm owes a client: a liability account, one per client account, balances per asset."""
    account, _ = LedgerAccount.objects.get_or_create(
        client=client,
        defaults={
            "code": f"client:{client.pk}",
            "name": f"Client {client.pk} funds",
            "type": AccountType.LIABILITY,
            "purpose": Purpose.CLIENT,
        },
    )
    return account


def reference_data_ensure() -> None:
    """Create the assets and firm accounts if missing (they are seeded by migration 0003 as well)."""
    for code, name, precision, is_fiat in ASSETS:
        Asset.objects.get_or_create(code=code, defaults={"name": name, "precision": precision, "is_fiat": is_fiat})
    for purpose in FIRM_ACCOUNTS:
        firm_account(purpose)


@transaction.atomic
def credit_limit_set(*, account: LedgerAccount, asset: str | Asset, limit: Decimal) -> Balance:
    if limit < 0:
        raise InvalidAmount("A credit limit cannot be negative.", field="limit")
    balance = _lock_balances([(account.pk, _code(asset))])[(account.pk, _code(asset))]
    balance.credit_limit = limit
    balance.save(update_fields=["credit_limit", "updated_at"])
    return balance


# --- posting ----------------------------------------------------------------------------------------------


def entry_post(
    *,
    key: str,
    kind: str,
    legs: Sequence[Leg],
    memo: str = "",
    captures: Sequence[Capture] = (),
    reverses: JournalEntry | None = None,
    acting_user=None,
) -> JournalEntry:
    """Post one balanced entry. Replaying a key returns the original entry; other content under it: conflict."""
    spec = EntrySpec(
        key=key, kind=kind, legs=legs, memo=memo, captures=captures, reverses=reverses, created_by=acting_user
    )
    return entries_post(specs=[spec])[0]


def entries_post(*, specs: Sequence[EntrySpec], releases: Sequence[Hold] = ()) -> list[JournalEntry]:
    """Post many entries, and give back all that still remains of the ``releases`` holds, in one transaction
    with one balance lock statement (the matcher's batch path)."""
    precisions = asset_precisions(leg.asset for spec in specs for leg in spec.legs)
    for spec in specs:
        _validate(spec, precisions)
    _check_unique_keys_in_batch(specs)
    try:
        with transaction.atomic():
            return _post_new_or_replay(specs, releases)
    except IntegrityError:
        # A concurrent transaction committed one of our keys first (the unique index made us wait for it):
        # the second attempt finds that entry and replays it, or reports the conflict.
        if not JournalEntry.objects.filter(key__in=[s.key for s in specs]).exists():
            raise
        with transaction.atomic():
            return _post_new_or_replay(specs, releases)


def _post_new_or_replay(specs: Sequence[EntrySpec], releases: Sequence[Hold]) -> list[JournalEntry]:
    existing = _entries_by_key([s.key for s in specs])
    for spec in specs:
        found = existing.get(spec.key)
        if found is not None and found.content_hash != spec.content_hash:
            raise IdempotencyConflict(
                f"Entry key {spec.key!r} was already used for different postings.", field="key"
            )
    new_specs = [s for s in specs if s.key not in existing]
    created = {e.key: e for e in _write(new_specs, releases)} if new_specs or releases else {}
    return [existing.get(s.key) or created[s.key] for s in specs]


def _entries_by_key(keys: list[str]) -> dict[str, JournalEntry]:
    """The entries already stored under these keys. Asked first with one array parameter: a batch's keys are
    almost always new, and that answer should not cost a query compiled for hundreds of placeholders."""
    if not keys:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT key FROM ledger_journalentry WHERE key = ANY(%s::varchar[])", [keys])
            keys = [key for (key,) in cursor.fetchall()]
        if not keys:
            return {}
    return {e.key: e for e in JournalEntry.objects.filter(key__in=keys)}


def _write(specs: Sequence[EntrySpec], releases: Sequence[Hold]) -> list[JournalEntry]:
    """Write holds, entries and postings, run their deferred checks, and only then lock and change the balances.

    Balance rows are the contended rows (every order placement of a client locks one), so they are locked last,
    all in one sorted statement, and held only for the balance update and the caller's remaining writes.
    """
    now = timezone.now()
    _consume_holds([c for s in specs for c in s.captures], now)
    released = _release_holds(releases, now)
    entries = _insert_entries(specs, now)
    rows_insert(
        Posting, ["entry", "account", "asset", "amount", "created_at"],
        [(entry.pk, leg.account.pk, leg.asset, leg.amount, now) for entry, spec in zip(entries, specs)
         for leg in spec.legs],
    )
    _deferred_checks_run()
    keys = {(leg.account.pk, leg.asset) for spec in specs for leg in spec.legs}
    balances = _lock_balances(keys | {(h.account_id, h.asset_id) for h in releases})
    _apply_to_balances(balances, specs, released, now)
    return entries


def _deferred_checks_run() -> None:
    """Run now what PostgreSQL would check at commit (entries balance and have postings, foreign keys), then
    defer again: the commit, with the balance rows locked, has that much less to do. Every deferrable
    constraint of this schema is initially deferred, so ALL DEFERRED restores the default."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _insert_entries(specs: Sequence[EntrySpec], now) -> list[JournalEntry]:
    fields = ["key", "kind", "memo", "content_hash", "reverses_id", "created_by_id", "created_at"]
    rows = [(s.key, s.kind, s.memo, s.content_hash, getattr(s.reverses, "pk", None), getattr(s.created_by, "pk", None),
             now) for s in specs]
    ids = {key: pk for pk, key in rows_insert(JournalEntry, fields, rows, returning=["id", "key"])}
    entries = []
    for row in rows:
        entry = JournalEntry(id=ids[row[0]], **dict(zip(fields, row)))
        entry._state.adding, entry._state.db = False, connection.alias
        entries.append(entry)
    return entries


def _holds_release_write(hold_ids: list[int], now) -> list[tuple[int, int, str, Decimal]]:
    """Lock the still-active holds among ``hold_ids`` in id order and release them; returns (id, account id,
    asset, what remained) per hold released. One statement on PostgreSQL."""
    if connection.vendor != "postgresql":
        locked = list(
            Hold.objects.select_for_update(no_key=True).filter(pk__in=hold_ids, status=HoldStatus.ACTIVE)
            .order_by("id").values_list("id", "account_id", "asset_id", "remaining")
        )
        Hold.objects.filter(pk__in=[row[0] for row in locked]).update(
            remaining=ZERO, status=HoldStatus.RELEASED, updated_at=now
        )
        return locked
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH locked AS (SELECT id, remaining FROM ledger_hold WHERE id = ANY(%s::bigint[]) AND status = 'active'"
            " ORDER BY id FOR NO KEY UPDATE)"
            " UPDATE ledger_hold AS h SET remaining = 0, status = 'released', updated_at = %s FROM locked"
            " WHERE h.id = locked.id RETURNING h.id, h.account_id, h.asset_id, locked.remaining",
            [hold_ids, now],
        )
        return cursor.fetchall()


def _apply_to_balances(balances: dict[tuple[int, str], Balance], specs: Sequence[EntrySpec],
                       released: list[tuple[int, int, str, Decimal]], now) -> None:
    amount_delta: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    held_delta: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    codes: dict[int, str] = {}
    for spec in specs:
        for leg in spec.legs:
            amount_delta[(leg.account.pk, leg.asset)] += leg.amount * leg.account.normal_sign
            codes[leg.account.pk] = leg.account.code
        for capture in spec.captures:
            held_delta[(capture.hold.account_id, capture.hold.asset_id)] -= capture.amount
    for _, account_id, asset, amount in released:
        held_delta[(account_id, asset)] -= amount
    for (account_id, asset), balance in balances.items():
        balance.amount += amount_delta[(account_id, asset)]
        balance.held += held_delta[(account_id, asset)]
        if balance.held < 0:
            raise LedgerError("A capture or release exceeds what is held.", code="hold_exceeded")
        if balance.enforce_floor and balance.amount - balance.held < -balance.credit_limit:
            raise InsufficientFunds(
                f"Insufficient {asset} in {codes.get(account_id, account_id)}: the entry would leave "
                f"{_at_asset_precision(balance.amount - balance.held, asset)} available.",
                field="amount",
            )
    rows_update(Balance, ["amount", "held", "updated_at"], [(b.pk, b.amount, b.held, now) for b in balances.values()])


def _lock_balances(keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Balance]:
    """Lock the balance rows of these (account id, asset) pairs in id order, creating missing ones.

    One ``SELECT ... ORDER BY id FOR UPDATE`` takes every lock a posting needs, so two transactions touching
    the same balances always lock them in the same order and cannot deadlock on each other.
    """
    keys = list(keys)
    rows = _select_balances_for_update(keys)
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
        rows = _select_balances_for_update(keys)
    return rows


def _select_balances_for_update(keys: list[tuple[int, str]]) -> dict[tuple[int, str], Balance]:
    if not keys:
        return {}
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    if connection.vendor == "postgresql":
        match = "(account_id, asset_id) IN (SELECT * FROM unnest(%s::bigint[], %s::varchar[]))"
        params = [list(column) for column in zip(*keys)]
    else:
        match = f"(account_id, asset_id) IN ({', '.join(['(%s, %s)'] * len(keys))})"
        params = [value for key in keys for value in key]
    sql = f"SELECT * FROM ledger_balance WHERE {match} ORDER BY id{lock}"
    return {(b.account_id, b.asset_id): b for b in Balance.objects.raw(sql, params)}


def _consume_holds(captures: Sequence[Capture], now) -> None:
    """Reduce each captured hold by what the batch spent from it. The database does the arithmetic on the
    locked row (a hold object loaded earlier may be stale); the in-memory objects are updated for the caller."""
    per_hold: dict[int, Decimal] = defaultdict(lambda: ZERO)
    holds: dict[int, Hold] = {}
    for capture in captures:
        per_hold[capture.hold.pk] += capture.amount
        holds[capture.hold.pk] = capture.hold
    if not per_hold:
        return
    for hold_id, amount in per_hold.items():
        hold = holds[hold_id]
        if hold.status != HoldStatus.ACTIVE or hold.remaining < amount:
            raise LedgerError(f"Capture of {amount} exceeds hold {hold.key}.", code="hold_exceeded")
        hold.remaining -= amount
        hold.status = HoldStatus.CAPTURED if hold.remaining == 0 else HoldStatus.ACTIVE
    if _captures_write(dict(sorted(per_hold.items())), now) != len(per_hold):
        raise LedgerError("A hold changed underneath this capture.", code="hold_exceeded")


def _captures_write(per_hold: dict[int, Decimal], now) -> int:
    """Subtract each amount from its still-active hold if enough remains; returns how many holds were updated.
    One statement on PostgreSQL (the matcher captures hundreds of holds per batch), one per hold elsewhere."""
    if connection.vendor != "postgresql":
        updated = 0
        for hold_id, amount in per_hold.items():
            updated += Hold.objects.filter(pk=hold_id, status=HoldStatus.ACTIVE, remaining__gte=amount).update(
                remaining=F("remaining") - amount,
                status=Case(When(remaining=amount, then=Value(HoldStatus.CAPTURED)), default=Value(HoldStatus.ACTIVE)),
                updated_at=now,
            )
        return updated
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_hold AS h SET remaining = h.remaining - v.amount, updated_at = %s, "
            "status = CASE WHEN h.remaining = v.amount THEN 'captured' ELSE 'active' END "
            "FROM unnest(%s::bigint[], %s::numeric[]) AS v(id, amount) "
            "WHERE h.id = v.id AND h.status = 'active' AND h.remaining >= v.amount",
            [now, list(per_hold), list(per_hold.values())],
        )
        return cursor.rowcount


def _release_holds(holds: Sequence[Hold], now) -> list[tuple[int, int, str, Decimal]]:
    """Set every still-active hold of ``holds`` to released with nothing remaining. Returns (hold id, account id,
    asset, amount given back) per hold released; the in-memory objects are updated for the caller."""
    if not holds:
        return []
    locked = _holds_release_write(sorted({h.pk for h in holds}), now)
    released_ids = {row[0] for row in locked}
    for hold in holds:
        if hold.pk in released_ids:
            hold.remaining, hold.status = ZERO, HoldStatus.RELEASED
    return locked


def _validate(spec: EntrySpec, precisions: dict[str, int]) -> None:
    if not spec.key or len(spec.key) > 200:
        raise LedgerError("An entry needs an idempotency key of 1 to 200 characters.", code="invalid_key")
    if len(spec.legs) < 2:
        raise UnbalancedEntry("An entry needs at least two postings.")
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for leg in spec.legs:
        if leg.asset not in precisions:
            raise LedgerError(f"Unknown asset {leg.asset!r}.", code="unknown_asset", field="asset")
        if not isinstance(leg.amount, Decimal) or leg.amount == 0:
            raise InvalidAmount("Posting amounts must be non-zero Decimals.", field="amount")
        require_exact(leg.amount, precisions[leg.asset], field="amount")
        if leg.account.pk is None:
            raise LedgerError("Postings must name a saved ledger account.", code="invalid_account")
        totals[leg.asset] += leg.amount
    unbalanced = {asset: total for asset, total in totals.items() if total != 0}
    if unbalanced:
        raise UnbalancedEntry(f"Entry {spec.key!r} does not balance: {unbalanced}.")
    for capture in spec.captures:
        if capture.amount <= 0:
            raise InvalidAmount("A capture must be positive.", field="amount")
        if not any(l.account.pk == capture.hold.account_id and l.asset == capture.hold.asset_id for l in spec.legs):
            raise LedgerError("A capture must spend from an account the entry posts to.", code="invalid_capture")
    spec.content_hash = _content_hash(spec)


def _check_unique_keys_in_batch(specs: Sequence[EntrySpec]) -> None:
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise LedgerError("A batch names the same entry key twice.", code="invalid_key")


def _content_hash(spec: EntrySpec) -> str:
    legs = sorted((leg.account.pk, leg.asset, str(leg.amount.normalize())) for leg in spec.legs)
    captures = sorted((c.hold.pk, str(c.amount.normalize())) for c in spec.captures)
    reverses = spec.reverses.pk if spec.reverses else None
    return hashlib.sha256(repr((spec.kind, legs, captures, reverses)).encode()).hexdigest()


_precisions: dict[str, int] = {}


def asset_precisions(codes: Iterable[str] = ()) -> dict[str, int]:
    """Decimal places per asset code. Reference data, so cached in the process (a posting path should not
    read it every time); asking for a code the cache lacks reloads it. Precision never changes once set."""
    if not _precisions or not set(codes) <= _precisions.keys():
        _precisions.clear()
        _precisions.update(Asset.objects.values_list("code", "precision"))
    return _precisions


@transaction.atomic
def entry_reverse(*, entry: JournalEntry, memo: str = "", acting_user=None) -> JournalEntry:
    """Post the mirror image of ``entry``. An entry is reversed at most once (replay returns the reversal)."""
    if entry.kind == "reversal":
        raise LedgerError("A reversal cannot itself be reversed; post a new entry.", code="invalid_reversal")
    legs = [Leg(p.account, p.asset_id, -p.amount) for p in entry.postings.select_related("account")]
    return entry_post(
        key=f"reversal:{entry.key}",
        kind="reversal",
        legs=legs,
        memo=memo or f"Reversal of {entry.key}",
        reverses=entry,
        acting_user=acting_user,
    )


# --- holds ------------------------------------------------------------------------------------------------


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
    asset = _code(asset)
    if amount <= 0:
        raise InvalidAmount("A hold must be positive.", field="amount")
    require_exact(amount, asset_precisions([asset])[asset], field="amount")
    hold = _hold_insert(key=key, account=account, asset=asset, amount=amount, reason=reason)
    yield hold
    try:
        _balance_reserve(account, asset, amount, field=field)
    except InsufficientFunds:
        # Raw: the ORM's delete would refuse while the caller's order still refers to the hold (PROTECT); the
        # caller's transaction rolls back with this error anyway, this only keeps a caught refusal clean.
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM ledger_hold WHERE id = %s", [hold.pk])
        raise


def _hold_insert(*, key: str, account: LedgerAccount, asset: str, amount: Decimal, reason: str) -> Hold:
    now = timezone.now()
    hold = Hold(key=key, account=account, asset_id=asset, amount=amount, remaining=amount,
                status=HoldStatus.ACTIVE, reason=reason, created_at=now, updated_at=now)
    fields = ["key", "account_id", "asset_id", "amount", "remaining", "status", "reason", "created_at", "updated_at"]
    [(hold.pk,)] = rows_insert(Hold, fields, [[getattr(hold, f) for f in fields]], returning=["id"])
    hold._state.adding, hold._state.db = False, connection.alias
    return hold


def _balance_reserve(account: LedgerAccount, asset: str, amount: Decimal, *, field: str) -> None:
    """Add ``amount`` to what the balance holds if that much is available above its floor. On PostgreSQL one
    UPDATE locks, checks and reserves (it takes the same row lock as ``SELECT ... FOR UPDATE`` and sees the
    latest committed row); a missing row or a refusal takes the lock-and-check path, which creates the row or
    names the shortfall."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ledger_balance SET held = held + %s, updated_at = %s WHERE account_id = %s AND asset_id = %s"
                " AND (NOT enforce_floor OR amount - held - %s >= -credit_limit)",
                [amount, timezone.now(), account.pk, asset, amount],
            )
            if cursor.rowcount == 1:
                return
    balance = _lock_balances([(account.pk, asset)])[(account.pk, asset)]
    if balance.enforce_floor and balance.amount - balance.held - amount < -balance.credit_limit:
        raise InsufficientFunds(
            f"Insufficient available {asset}: {_at_asset_precision(balance.amount - balance.held, asset)} "
            f"available, {_at_asset_precision(amount, asset)} needed.",
            field=field,
        )
    balance.held += amount
    balance.save(update_fields=["held", "updated_at"])


@transaction.atomic
def holds_release(*, holds: Sequence[Hold]) -> list[Hold]:
    """Give back all that remains of these holds: order cancels, withdrawals rejected or cancelled. Holds no
    longer active are skipped, so a release is replay-safe. The holds are locked first and the balance rows
    last, as everywhere in the ledger. Returns the holds released (their objects updated)."""
    now = timezone.now()
    released = _release_holds(holds, now)
    if released:
        balances = _lock_balances({(account_id, asset) for _, account_id, asset, _ in released})
        _apply_to_balances(balances, [], released, now)
    released_ids = {hold_id for hold_id, *_ in released}
    return [h for h in holds if h.pk in released_ids]


# --- manual adjustments under maker-checker -----------------------------------------------------------------
# A positive amount credits the client and debits firm equity; a negative one debits the client and credits
# firm equity. Equity rather than suspense: an approved adjustment is a decided outcome the firm bears (a goodwill
# credit, a fee refund, a correction), while suspense holds unexplained breaks that are still being investigated.


def _require_staff_permission(acting_user, perm: str, doing: str) -> None:
    if acting_user is None or not acting_user.has_perm(perm):
        raise Forbidden(f"You do not have permission to {doing}.", code="permission_denied")


def _require_four_eyes(adjustment: Adjustment, acting_user) -> None:
    if adjustment.proposed_by_id == acting_user.pk:
        raise Forbidden(
            "Four-eyes rule: the proposer of an adjustment cannot approve or reject it.", code="four_eyes"
        )


def _adjustment_audit(adjustment: Adjustment, *, action: str, acting_user, before=None, extra=None) -> None:
    after = audit_values(adjustment, ["account", "asset", "amount", "reason", "status", "decided_by", "entry"])
    audit_record(
        acting_user=acting_user,
        action=action,
        obj=adjustment,
        account=adjustment.account.client,
        before=before,
        after={**after, **(extra or {})},
    )


@transaction.atomic
def adjustment_propose(
    *, account: LedgerAccount, asset: str | Asset, amount: Decimal, reason: str, acting_user
) -> Adjustment:
    """Record a proposed correction of a client balance. Nothing is posted until another user approves it."""
    _require_staff_permission(acting_user, "ledger.add_adjustment", "propose adjustments")
    if not account.is_client:
        raise LedgerError("Adjustments apply to client accounts only.", code="invalid_account", field="account")
    precision = asset_precisions([_code(asset)]).get(_code(asset))
    if precision is None:
        raise LedgerError(f"Unknown asset {_code(asset)!r}.", code="unknown_asset", field="asset")
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount == 0:
        raise InvalidAmount("An adjustment needs a non-zero decimal amount.", field="amount")
    amount = require_exact(amount, precision, field="amount")
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError("Say why the balance needs adjusting.", code="reason_required", field="reason")
    adjustment = Adjustment.objects.create(
        account=account, asset_id=_code(asset), amount=amount, reason=reason[:500], proposed_by=acting_user
    )
    _adjustment_audit(adjustment, action="adjustment.propose", acting_user=acting_user)
    return adjustment


@transaction.atomic
def adjustment_approve(*, adjustment: Adjustment, acting_user) -> Adjustment:
    """Approve someone else's proposal and post it as one balanced entry. Approving again changes nothing."""
    _require_staff_permission(acting_user, "ledger.approve_adjustment", "approve adjustments")
    adjustment = Adjustment.objects.select_for_update(no_key=True).select_related("account").get(pk=adjustment.pk)
    _require_four_eyes(adjustment, acting_user)
    if adjustment.status == AdjustmentStatus.APPROVED:
        return adjustment
    if adjustment.status != AdjustmentStatus.PROPOSED:
        raise Conflict(f"Adjustment #{adjustment.pk} was already {adjustment.status}.", code="already_decided")
    before = {"status": adjustment.status}
    adjustment.entry = entry_post(
        key=f"adjustment:{adjustment.pk}",
        kind="adjustment",
        legs=[
            credit(adjustment.account, adjustment.asset_id, adjustment.amount),
            debit(firm_account(Purpose.EQUITY), adjustment.asset_id, adjustment.amount),
        ],
        memo=f"Adjustment #{adjustment.pk}: {adjustment.reason}"[:500],
        acting_user=acting_user,
    )
    adjustment.status = AdjustmentStatus.APPROVED
    adjustment.decided_by = acting_user
    adjustment.decided_at = timezone.now()
    adjustment.save(update_fields=["entry", "status", "decided_by", "decided_at"])
    _adjustment_audit(adjustment, action="adjustment.approve", acting_user=acting_user, before=before)
    return adjustment


@transaction.atomic
def adjustment_reject(*, adjustment: Adjustment, acting_user, reason: str) -> Adjustment:
    """Turn a proposal down; nothing is posted. Rejecting again changes nothing."""
    _require_staff_permission(acting_user, "ledger.approve_adjustment", "reject adjustments")
    adjustment = Adjustment.objects.select_for_update(no_key=True).select_related("account").get(pk=adjustment.pk)
    _require_four_eyes(adjustment, acting_user)
    if adjustment.status == AdjustmentStatus.REJECTED:
        return adjustment
    if adjustment.status != AdjustmentStatus.PROPOSED:
        raise Conflict(f"Adjustment #{adjustment.pk} was already {adjustment.status}.", code="already_decided")
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError("Say why the adjustment is rejected.", code="reason_required", field="reason")
    before = {"status": adjustment.status}
    adjustment.status = AdjustmentStatus.REJECTED
    adjustment.decided_by = acting_user
    adjustment.decided_at = timezone.now()
    adjustment.save(update_fields=["status", "decided_by", "decided_at"])
    _adjustment_audit(
        adjustment, action="adjustment.reject", acting_user=acting_user, before=before, extra={"reason": reason}
    )
    return adjustment
