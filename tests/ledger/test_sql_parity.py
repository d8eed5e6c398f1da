"""ledger/sql.py: each PostgreSQL statement and its portable twin, run on the same starting state, give the same rows
and the same refusals. The twins are plain ORM or standard SQL, so both run here on PostgreSQL; each run happens in a
savepoint that is rolled back before the other runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.exceptions import DomainError
from ledger import services as ledger
from ledger import sql
from ledger.errors import InsufficientFunds
from ledger.models import Balance, Hold, HoldStatus, JournalEntry, LedgerAccount, Purpose
from ledger.reference import FIRM_ACCOUNTS
from tests.factories import ClientAccountFactory, fund, ledger_account_of

pytestmark = pytest.mark.django_db
D = Decimal
VARIANTS = ("postgresql", "portable")
DB_ERRORS = (IntegrityError, InternalError)


class _RollBack(Exception):
    pass


@dataclass
class Outcome:
    result: object = None
    refusal: tuple | None = None
    state: object = None
    queries: int = 0

    def seen(self) -> tuple:
        """What both variants must agree on (the number of queries may differ by design)."""
        return self.result, self.refusal, self.state


def run_rolled_back(call, observe=lambda: None, shape=lambda result: result) -> Outcome:
    """``call()`` in a savepoint; its result (through ``shape``) or its refusal, then the state ``observe()`` reads,
    then the savepoint is rolled back so the next run starts from the same state."""
    outcome = Outcome()
    try:
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            try:
                outcome.result = shape(call())
            except DomainError as refused:
                outcome.refusal = (type(refused), refused.code, refused.message, refused.field)
            outcome.queries = len(queries)
            outcome.state = observe()
            raise _RollBack
    except _RollBack:
        pass
    return outcome


def both(name: str, *args, observe=lambda: None, shape=lambda result: result, **kwargs) -> Outcome:
    """Run ``sql.<name>_postgresql`` and ``sql.<name>_portable`` on the same state; assert they agree and return
    the PostgreSQL outcome (for the scenario's own expectations)."""
    assert connection.vendor == "postgresql", "the parity tests compare against the PostgreSQL statements"
    outcomes = {
        variant: run_rolled_back(lambda v=variant: getattr(sql, f"{name}_{v}")(*args, **kwargs), observe, shape)
        for variant in VARIANTS
    }
    assert outcomes["postgresql"].seen() == outcomes["portable"].seen()
    return outcomes["postgresql"]


@pytest.fixture
def client_account():
    return ledger_account_of(ClientAccountFactory())


def hold_rows(*holds: Hold) -> list[tuple]:
    return list(Hold.objects.filter(pk__in=[h.pk for h in holds]).order_by("id")
                .values_list("id", "status", "remaining", "updated_at"))


def balance_row(account, asset: str) -> tuple | None:
    return (Balance.objects.filter(account=account, asset_id=asset)
            .values_list("amount", "held", "credit_limit", "enforce_floor").first())


def spend(account, hold: Hold, amount: str, key: str) -> None:
    """Capture part of a hold as a withdrawal would: debit the client, credit custody."""
    ledger.entry_post(key=key, kind="withdrawal", legs=[
        ledger.debit(account, hold.asset_id, D(amount)),
        ledger.credit(ledger.firm_account(Purpose.CUSTODY), hold.asset_id, D(amount)),
    ], captures=[ledger.Capture(hold, D(amount))])


@pytest.fixture
def holds(client_account):
    """Four USD holds of the client: active, active after a partial capture, released, fully captured."""
    fund(client_account, "USD", "1000")
    placed = [ledger.hold_place(key=f"parity:{i}", account=client_account, asset="USD", amount=D(amount))
              for i, amount in enumerate(["60", "50", "40", "30"])]
    active, partly_captured, released, captured = placed
    spend(client_account, partly_captured, "20", "parity:spend:1")
    ledger.holds_release(holds=[released])
    spend(client_account, captured, "30", "parity:spend:3")
    for hold in placed:
        hold.refresh_from_db()
    assert [h.status for h in placed] == [HoldStatus.ACTIVE, HoldStatus.ACTIVE, HoldStatus.RELEASED,
                                          HoldStatus.CAPTURED]
    return placed


# --- entries_existing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("asked, found", [
    (["parity:a", "parity:new", "parity:b"], {"parity:a", "parity:b"}),
    (["parity:new", "parity:other"], set()),
    ([], set()),
])
def test_entries_existing_finds_the_same_entries(client_account, asked, found):
    custody = ledger.firm_account(Purpose.CUSTODY)
    for key in ("parity:a", "parity:b"):
        ledger.entry_post(key=key, kind="deposit",
                          legs=[ledger.debit(custody, "USD", D("1")), ledger.credit(client_account, "USD", D("1"))])
    outcome = both("entries_existing", asked, shape=lambda entries: {key: e.pk for key, e in entries.items()})
    assert outcome.result == dict(JournalEntry.objects.filter(key__in=found).values_list("key", "id"))


# --- deferred_checks_run ----------------------------------------------------------------------------------


def unbalanced_entry_insert(account) -> None:
    """Two postings that do not balance, written past every Python check: the deferred trigger refuses them at the
    latest at commit."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO ledger_journalentry (key, kind, memo, content_hash, created_at) "
                       "VALUES ('parity:unbalanced', 'raw', '', '', %s) RETURNING id", [now])
        [entry_id] = cursor.fetchone()
        for amount in ("1", "-0.5"):
            cursor.execute("INSERT INTO ledger_posting (entry_id, account_id, asset_id, amount, created_at) "
                           "VALUES (%s, %s, 'USD', %s, %s)", [entry_id, account.pk, D(amount), now])


def commit_checks() -> None:
    """What the commit would check, run now (the transaction of the test never commits)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def refusal_by_commit(variant: str, account) -> tuple[str, str]:
    """When (at the call or at commit) and why the database refuses an unbalanced entry written before the call;
    everything is rolled back afterwards."""
    steps = (("at the call", getattr(sql, f"deferred_checks_run_{variant}")), ("at commit", commit_checks))
    refusal = ("never", "")
    try:
        with transaction.atomic():
            unbalanced_entry_insert(account)
            for when, step in steps:
                try:
                    with transaction.atomic():
                        step()
                except DB_ERRORS as refused:
                    refusal = (when, re.sub(r"\d+", "N", str(refused).splitlines()[0]))
                    break
            raise _RollBack
    except _RollBack:
        pass
    return refusal


def test_deferred_checks_refuse_an_unbalanced_entry_by_commit_and_postgresql_at_once(client_account):
    refusals = {variant: refusal_by_commit(variant, client_account) for variant in VARIANTS}
    assert refusals["postgresql"][1] == refusals["portable"][1]
    assert "does not balance" in refusals["postgresql"][1]
    assert refusals == {"postgresql": ("at the call", refusals["postgresql"][1]),
                        "portable": ("at commit", refusals["portable"][1])}


def test_deferred_checks_pass_a_sound_state_and_leave_the_checks_deferred(client_account):
    fund(client_account, "USD", "1")

    def then_write_unbalanced():
        """Deferred again after the call: an unbalanced write is not refused until commit."""
        unbalanced_entry_insert(client_account)
        return "written"

    outcome = both("deferred_checks_run", observe=then_write_unbalanced)
    assert (outcome.result, outcome.refusal, outcome.state) == (None, None, "written")


# --- holds_release_rows -----------------------------------------------------------------------------------


def test_holds_release_rows_releases_only_the_active_holds(client_account, holds):
    active, partly_captured, released, captured = holds
    now = timezone.now()
    ids = sorted([h.pk for h in holds] + [-1])
    outcome = both("holds_release_rows", ids, now, observe=lambda: hold_rows(*holds),
                   shape=lambda rows: sorted(tuple(row) for row in rows))
    assert outcome.result == [(active.pk, client_account.pk, "USD", D("60")),
                              (partly_captured.pk, client_account.pk, "USD", D("30"))]
    assert [(status, remaining) for _, status, remaining, _ in outcome.state] == [
        (HoldStatus.RELEASED, 0), (HoldStatus.RELEASED, 0), (HoldStatus.RELEASED, 0), (HoldStatus.CAPTURED, 0)]


def test_holds_release_rows_of_no_active_hold_changes_nothing(holds):
    _, _, released, captured = holds
    before = hold_rows(*holds)
    outcome = both("holds_release_rows", [released.pk, captured.pk], timezone.now(),
                   observe=lambda: hold_rows(*holds), shape=list)
    assert (outcome.result, outcome.state) == ([], before)


# --- captures_apply ---------------------------------------------------------------------------------------


def test_captures_apply_takes_what_remains_and_refuses_the_rest(holds):
    active, partly_captured, released, captured = holds
    now = timezone.now()
    per_hold = {active.pk: D("10"), partly_captured.pk: D("30"), released.pk: D("1"), captured.pk: D("1")}
    outcome = both("captures_apply", per_hold, now, observe=lambda: hold_rows(*holds))
    assert outcome.result == 2
    assert [(status, remaining) for _, status, remaining, _ in outcome.state] == [
        (HoldStatus.ACTIVE, 50), (HoldStatus.CAPTURED, 0), (HoldStatus.RELEASED, 0), (HoldStatus.CAPTURED, 0)]


def test_captures_apply_refuses_a_hold_with_too_little_remaining_or_no_longer_active(holds):
    active, partly_captured, released, _ = holds
    before = hold_rows(*holds)
    per_hold = {active.pk: D("60.01"), partly_captured.pk: D("30.01"), released.pk: D("0")}
    outcome = both("captures_apply", per_hold, timezone.now(), observe=lambda: hold_rows(*holds))
    assert (outcome.result, outcome.state) == (0, before)


# --- hold_delete (one portable statement, no twin) --------------------------------------------------------


def test_hold_delete_removes_that_hold_only(holds):
    sql.hold_delete(holds[0].pk)
    assert list(Hold.objects.filter(pk__in=[h.pk for h in holds]).values_list("pk", flat=True).order_by("pk")) == [
        h.pk for h in holds[1:]]


# --- balances_select_for_update ---------------------------------------------------------------------------


def test_balances_select_for_update_finds_the_same_rows_in_id_order(client_account):
    other = ledger_account_of(ClientAccountFactory())
    fund(other, "BTC", "1")
    fund(client_account, "USD", "5")
    fund(client_account, "BTC", "2")
    custody = ledger.firm_account(Purpose.CUSTODY)
    keys = [(client_account.pk, "BTC"), (custody.pk, "USD"), (other.pk, "BTC"), (client_account.pk, "USD"),
            (other.pk, "ETH"), (-1, "USD")]
    outcome = both("balances_select_for_update", keys, shape=lambda rows: [
        (key, b.pk, b.amount, b.held, b.credit_limit, b.enforce_floor) for key, b in rows.items()])
    expected = Balance.objects.filter(pk__in=[
        Balance.objects.get(account_id=a, asset_id=s).pk for a, s in keys[:4]]).order_by("id")
    assert outcome.result == [((b.account_id, b.asset_id), b.pk, b.amount, b.held, b.credit_limit, b.enforce_floor)
                              for b in expected]


def test_balances_select_for_update_of_nothing_is_nothing():
    assert both("balances_select_for_update", []).result == {}


# --- balance_reserve --------------------------------------------------------------------------------------


@pytest.mark.parametrize("credit_limit, amount, accepted", [
    ("0", "40", True),  # exactly what is available
    ("0", "40.01", False),
    ("50", "90", True),  # the credit limit counts as available
    ("50", "90.01", False),
])
def test_balance_reserve_accepts_and_refuses_at_the_same_floor(client_account, credit_limit, amount, accepted):
    fund(client_account, "USD", "100")
    ledger.hold_place(key="parity:held", account=client_account, asset="USD", amount=D("60"))
    ledger.credit_limit_set(account=client_account, asset="USD", limit=D(credit_limit))
    before = balance_row(client_account, "USD")
    outcome = both("balance_reserve", client_account, "USD", D(amount), field="funds",
                   observe=lambda: balance_row(client_account, "USD"))
    if accepted:
        assert outcome.refusal is None
        assert outcome.state == (D("100"), D("60") + D(amount), D(credit_limit), True)
        assert outcome.queries == 1, "the PostgreSQL statement alone decides when the funds are there"
    else:
        assert outcome.refusal[:2] == (InsufficientFunds, "insufficient_funds")
        assert outcome.refusal[3] == "funds"
        assert outcome.state == before


def test_balance_reserve_creates_a_missing_client_row_and_refuses(client_account):
    outcome = both("balance_reserve", client_account, "ETH", D("1"), field="amount",
                   observe=lambda: balance_row(client_account, "ETH"))
    assert outcome.refusal == (InsufficientFunds, "insufficient_funds",
                               "Insufficient available ETH: 0.000000000000000000 available, 1.000000000000000000 "
                               "needed.", "amount")
    assert outcome.state == (0, 0, 0, True)


@pytest.mark.parametrize("funded", [True, False])
def test_balance_reserve_lets_an_account_without_a_floor_hold_beyond_its_balance(funded):
    fees = ledger.firm_account(Purpose.FEES)
    if funded:
        ledger.entry_post(key="parity:fees", kind="fee", legs=[
            ledger.debit(ledger.firm_account(Purpose.CUSTODY), "USD", D("5")), ledger.credit(fees, "USD", D("5"))])
    outcome = both("balance_reserve", fees, "USD", D("1000"), field="amount", observe=lambda: balance_row(fees, "USD"))
    assert outcome.refusal is None
    assert outcome.state == (D("5") if funded else 0, D("1000"), 0, False)
    if funded:
        assert outcome.queries == 1, "the PostgreSQL statement alone decides when the row has no floor"


# --- the dispatchers --------------------------------------------------------------------------------------

def accounts_seen(accounts) -> list[dict]:
    return sorted((model_to_dict(account) | {"id": account.pk} for account in accounts), key=lambda row: row["id"])


def test_ledger_accounts_of_finds_the_clients_accounts_and_the_coded_one():
    first, second, third = (ledger_account_of(ClientAccountFactory()) for _ in range(3))
    fees = ledger.firm_account(Purpose.FEES)
    found = both("ledger_accounts_of", [first.client_id, second.client_id, 999_999], fees.code,
                 shape=accounts_seen)
    assert [row["id"] for row in found.seen()[0]] == sorted([first.pk, second.pk, fees.pk])
    assert third.pk not in [row["id"] for row in found.seen()[0]]


def test_ledger_accounts_of_without_the_coded_account_finds_the_clients_only():
    account = ledger_account_of(ClientAccountFactory())
    found = both("ledger_accounts_of", [account.client_id], "no-such-code", shape=accounts_seen)
    assert [row["id"] for row in found.seen()[0]] == [account.pk]


def test_client_and_firm_accounts_create_a_missing_firm_account():
    account = ledger_account_of(ClientAccountFactory())
    LedgerAccount.objects.filter(code=FIRM_ACCOUNTS[Purpose.FEES][0]).delete()
    clients, firm = ledger.client_and_firm_accounts([account.client_id], Purpose.FEES)
    assert clients == {account.client_id: account}
    assert (firm.code, firm.purpose) == (FIRM_ACCOUNTS[Purpose.FEES][0], Purpose.FEES)
    assert ledger.client_and_firm_accounts([], Purpose.FEES) == ({}, firm)


TWINS = {  # name: the arguments of a call (the variants are replaced, so any will do)
    "entries_existing": ([],),
    "ledger_accounts_of": ([], "code"),
    "deferred_checks_run": (),
    "holds_release_rows": ([], None),
    "captures_apply": ({}, None),
    "balances_select_for_update": ([],),
    "balance_reserve": (None, "USD", D("1")),
}


def test_every_postgresql_statement_has_a_portable_twin_and_a_parity_test_above():
    public = [name for name in vars(sql) if not name.startswith("_")]
    postgresql = {name.removesuffix("_postgresql") for name in public if name.endswith("_postgresql")}
    portable = {name.removesuffix("_portable") for name in public if name.endswith("_portable")}
    assert postgresql == portable == set(TWINS)


@pytest.mark.parametrize("name", TWINS)
def test_on_postgresql_each_public_name_runs_the_postgresql_statement(name, monkeypatch):
    ran = []
    monkeypatch.setattr(sql, f"{name}_postgresql", lambda *args, **kwargs: ran.append("postgresql"))
    monkeypatch.setattr(sql, f"{name}_portable", lambda *args, **kwargs: ran.append("portable"))
    kwargs = {"field": "amount"} if name == "balance_reserve" else {}
    getattr(sql, name)(*TWINS[name], **kwargs)
    assert ran == ["postgresql"]
