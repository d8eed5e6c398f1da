"""The posting engine: balanced entries, their postings, and the balance changes they make, one transaction each.

Balance rows are locked with ``SELECT ... FOR UPDATE`` in one statement ordered by id, so concurrent postings never
deadlock on each other and never lose an update. Python validation gives good error messages; the PostgreSQL
triggers (migration 0002) are the guarantee.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.db import rows_insert, rows_update
from ledger import sql
from ledger.errors import (
    Code,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    LedgerError,
    UnbalancedEntry,
)
from ledger.models import Asset, Balance, Hold, HoldStatus, JournalEntry, LedgerAccount, Posting
from ledger.money import require_exact
from ledger.selectors import amount_text, asset_precisions

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
    existing = sql.entries_existing([s.key for s in specs])
    for spec in specs:
        found = existing.get(spec.key)
        if found is not None and found.content_hash != spec.content_hash:
            raise IdempotencyConflict(
                f"Entry key {spec.key!r} was already used for different postings.", field="key"
            )
    new_specs = [s for s in specs if s.key not in existing]
    created = {e.key: e for e in _write(new_specs, releases)} if new_specs or releases else {}
    return [existing.get(s.key) or created[s.key] for s in specs]


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
    sql.deferred_checks_run()
    keys = {(leg.account.pk, leg.asset) for spec in specs for leg in spec.legs}
    balances = sql.balances_lock(keys | {(h.account_id, h.asset_id) for h in releases})
    _apply_to_balances(balances, specs, released, now)
    return entries


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
            raise LedgerError("A capture or release exceeds what is held.", code=Code.HOLD_EXCEEDED)
        if balance.enforce_floor and balance.amount - balance.held < -balance.credit_limit:
            raise InsufficientFunds(
                f"Insufficient {asset} in {codes.get(account_id, account_id)}: the entry would leave "
                f"{amount_text(balance.amount - balance.held, asset)} available.",
                field="amount",
            )
    rows_update(Balance, ["amount", "held", "updated_at"], [(b.pk, b.amount, b.held, now) for b in balances.values()])


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
            raise LedgerError(f"Capture of {amount} exceeds hold {hold.key}.", code=Code.HOLD_EXCEEDED)
        hold.remaining -= amount
        hold.status = HoldStatus.CAPTURED if hold.remaining == 0 else HoldStatus.ACTIVE
    if sql.captures_apply(dict(sorted(per_hold.items())), now) != len(per_hold):
        raise LedgerError("A hold changed underneath this capture.", code=Code.HOLD_EXCEEDED)


def _release_holds(holds: Sequence[Hold], now) -> list[tuple[int, int, str, Decimal]]:
    """Set every still-active hold of ``holds`` to released with nothing remaining. Returns (hold id, account id,
    asset, amount given back) per hold released; the in-memory objects are updated for the caller."""
    if not holds:
        return []
    locked = sql.holds_release_rows(sorted({h.pk for h in holds}), now)
    released_ids = {row[0] for row in locked}
    for hold in holds:
        if hold.pk in released_ids:
            hold.remaining, hold.status = ZERO, HoldStatus.RELEASED
    return locked


def _validate(spec: EntrySpec, precisions: dict[str, int]) -> None:
    if not spec.key or len(spec.key) > 200:
        raise LedgerError("An entry needs an idempotency key of 1 to 200 characters.", code=Code.INVALID_KEY)
    if len(spec.legs) < 2:
        raise UnbalancedEntry("An entry needs at least two postings.")
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for leg in spec.legs:
        if leg.asset not in precisions:
            raise LedgerError(f"Unknown asset {leg.asset!r}.", code=Code.UNKNOWN_ASSET, field="asset")
        if not isinstance(leg.amount, Decimal) or leg.amount == 0:
            raise InvalidAmount("Posting amounts must be non-zero Decimals.", field="amount")
        require_exact(leg.amount, precisions[leg.asset], field="amount")
        if leg.account.pk is None:
            raise LedgerError("Postings must name a saved ledger account.", code=Code.INVALID_ACCOUNT)
        totals[leg.asset] += leg.amount
    unbalanced = {asset: total for asset, total in totals.items() if total != 0}
    if unbalanced:
        raise UnbalancedEntry(f"Entry {spec.key!r} does not balance: {unbalanced}.")
    for capture in spec.captures:
        if capture.amount <= 0:
            raise InvalidAmount("A capture must be positive.", field="amount")
        if not any(l.account.pk == capture.hold.account_id and l.asset == capture.hold.asset_id for l in spec.legs):
            raise LedgerError("A capture must spend from an account the entry posts to.", code=Code.INVALID_CAPTURE)
    spec.content_hash = _content_hash(spec)


def _check_unique_keys_in_batch(specs: Sequence[EntrySpec]) -> None:
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise LedgerError("A batch names the same entry key twice.", code=Code.INVALID_KEY)


def _content_hash(spec: EntrySpec) -> str:
    legs = sorted((leg.account.pk, leg.asset, str(leg.amount.normalize())) for leg in spec.legs)
    captures = sorted((c.hold.pk, str(c.amount.normalize())) for c in spec.captures)
    reverses = spec.reverses.pk if spec.reverses else None
    return hashlib.sha256(repr((spec.kind, legs, captures, reverses)).encode()).hexdigest()


@transaction.atomic
def entry_reverse(*, entry: JournalEntry, memo: str = "", acting_user=None) -> JournalEntry:
    """Post the mirror image of ``entry``. An entry is reversed at most once (replay returns the reversal)."""
    if entry.kind == "reversal":
        raise LedgerError("A reversal cannot itself be reversed; post a new entry.", code=Code.INVALID_REVERSAL)
    legs = [Leg(p.account, p.asset_id, -p.amount) for p in entry.postings.select_related("account")]
    return entry_post(
        key=f"reversal:{entry.key}",
        kind="reversal",
        legs=legs,
        memo=memo or f"Reversal of {entry.key}",
        reverses=entry,
        acting_user=acting_user,
    )
