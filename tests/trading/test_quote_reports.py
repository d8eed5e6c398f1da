"""Quotes and conversions in the compliance reports (trade blotter, large transactions, audit log) and in the
reconciliation, which checks the firm's inventory against the trades that moved it."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from compliance import reconciliation as rec
from compliance.reports import report_stream
from ledger import services as ledger
from ledger.models import Purpose
from tests.reliability.invariants import assert_books_consistent
from tests.trading.quote_desk import client_with, inventory_fund, limits_set
from trading.services import conversions, quotes

pytestmark = pytest.mark.django_db

EVER = {"start": datetime(2020, 1, 1, tzinfo=UTC), "end": datetime(2100, 1, 1, tzinfo=UTC)}


def rows_of(name, **scope) -> list[dict]:
    body = b"".join(report_stream(name, fmt="csv", **{**EVER, **scope})).decode()
    return list(csv.DictReader(io.StringIO(body.partition("\n")[2])))


@pytest.fixture
def traded(desk, clock, settings):
    """Alice buys 1 BTC by quote (total 100.97) and converts 20,000 USD to USDP; Bob sells 1.5 BTC by quote."""
    for asset in ("USDP",):
        limits_set(asset, max_long="1000000")
        inventory_fund(asset, "50000")
    alice, bob = client_with(USD="30000"), client_with(BTC="2")
    buy = quotes.quote_create(account=alice, market=desk, side="buy", size=D("1"), acting_user=None)
    buy = quotes.quote_execute(quote=buy, idempotency_key="a", acting_user=None)
    clock.advance(seconds=1)
    conversion = conversions.conversion_create(account=alice, from_asset="USD", to_asset="USDP",
                                               amount=D("20000"), idempotency_key="c", acting_user=None)
    clock.advance(seconds=1)
    sell = quotes.quote_create(account=bob, market=desk, side="sell", size=D("1.5"), acting_user=None)
    sell = quotes.quote_execute(quote=sell, idempotency_key="b", acting_user=None)
    return alice, bob, buy, conversion, sell


def test_the_trade_blotter_shows_quotes_and_conversions_against_the_firm(traded):
    alice, bob, buy, conversion, sell = traded
    rows = rows_of("trade_blotter")
    picked = [(r["trade_type"], r["trade_id"], r["market"], r["aggressor_side"], r["price"], r["size"],
               r["quote_amount"], r["taker_account_id"], r["taker_fee"], r["buyer_quote"], r["seller_quote"],
               r["counterparty"], r["entry_id"]) for r in rows]
    assert picked == [
        ("quote", str(buy.pk), "BTC-USD", "buy", "100.76", "1.00000000", "100.76", str(alice.pk), "0.21",
         "100.97", "100.76", "firm:inventory", str(buy.entry.pk)),
        ("conversion", str(conversion.pk), "USDP-USD", "buy", "1.00", "20000.000000", "20000.00", str(alice.pk), "0",
         "20000.00", "20000.00", "firm:inventory", str(conversion.entry.pk)),
        ("quote", str(sell.pk), "BTC-USD", "sell", "98.42", "1.50000000", "147.63", str(bob.pk), "0.30",
         "147.63", "147.33", "firm:inventory", str(sell.entry.pk)),
    ]
    assert rows[0]["executed_at"] == "2026-11-26T12:00:00.000000Z" and rows[0]["maker_side"] == "sell"
    assert [r["trade_id"] for r in rows_of("trade_blotter", account=bob)] == [str(sell.pk)]


def test_large_transactions_include_quote_and_conversion_postings(traded, settings):
    settings.LARGE_TRANSACTION_THRESHOLDS = {"USD": D("10000"), "USDP": D("10000"), "BTC": D("1.5")}
    alice, bob, buy, conversion, sell = traded
    rows = rows_of("large_transactions")
    picked = sorted((r["entry_kind"], r["client_account_id"], r["asset"], r["direction"], r["amount"]) for r in rows
                    if r["entry_kind"] in ("quote", "conversion"))
    assert picked == [
        ("conversion", str(alice.pk), "USD", "out", "20000.00"),
        ("conversion", str(alice.pk), "USDP", "in", "20000.000000"),
        ("quote", str(bob.pk), "BTC", "out", "1.50000000"),
    ]


def test_the_audit_log_report_has_every_quote_and_conversion(traded):
    actions = [r["action"] for r in rows_of("audit_log")
               if r["action"].startswith(("quote.", "conversion.", "inventory."))]
    assert actions.count("quote.create") == 2 and actions.count("quote.execute") == 2
    assert actions.count("conversion.create") == 1 and actions.count("inventory.fund") == 3


def test_reconciliation_covers_the_inventory(traded):
    assert_books_consistent()  # runs the reconciliation: every check clean
    run = rec.reconciliation_run()
    assert run.ok
    assert run.checks[rec.INVENTORY] == {"BTC": "10.5", "USD": "119953.13", "USDP": "30000"}
    assert run.checks[rec.CUSTODY]["USD"]["owed_less_expenses"] == run.checks[rec.CUSTODY]["USD"]["custody"]


def test_an_inventory_movement_without_a_trade_is_a_break(traded):
    inventory = ledger.firm_account(Purpose.INVENTORY)
    ledger.entry_post(key="stray", kind="adjustment", legs=[
        ledger.debit(ledger.firm_account(Purpose.EQUITY), "BTC", D("0.5")), ledger.credit(inventory, "BTC", D("0.5"))])
    run = rec.reconciliation_run()
    breaks = [(b.check_name, b.asset_id, b.expected, b.actual) for b in run.breaks.all()]
    assert breaks == [(rec.INVENTORY, "BTC", D("10.5"), D("11"))]


def test_a_position_beyond_a_lowered_limit_is_reported(traded):
    limits_set("BTC", max_long="10")
    run = rec.reconciliation_run()
    assert [(b.check_name, b.asset_id, b.actual) for b in run.breaks.all()] == [
        (rec.INVENTORY_LIMITS, "BTC", D("10.5"))]
