"""Quotes executed at the same time, in threads with their own connections and real PostgreSQL transactions:
one quote settles once whatever the keys, and concurrent executions of different quotes never take the firm
beyond its exposure limits together, even when each fits alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal as D

import pytest
from django.db import connection

from ledger.models import Balance, JournalEntry
from tests.reliability.db import RowLock, in_thread, wait_until
from tests.reliability.invariants import assert_books_consistent
from tests.threads import run_in_threads
from tests.trading.quote_desk import client_with, inventory, superuser
from trading.errors import QuoteAlreadyExecuted, QuoteRejected
from trading.models import Quote, QuoteStatus
from trading.services import quotes

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
SECONDS = 60


def attempt(quote: Quote, key: str, start: threading.Barrier):
    start.wait(timeout=SECONDS)
    try:
        return quotes.quote_execute(quote=quote, idempotency_key=key, acting_user=None)
    except (QuoteAlreadyExecuted, QuoteRejected) as refused:
        return refused


def test_one_quote_executed_by_many_threads_with_different_keys_settles_once(desk, clock):
    alice = client_with(USD="1000")
    quote = quotes.quote_create(account=alice, market=desk, side="buy", size=D("1"), acting_user=None)
    start = threading.Barrier(THREADS)

    results = run_in_threads(lambda i: attempt(quote, f"key-{i}", start), range(THREADS), threads=THREADS)

    executed = [r for r in results if isinstance(r, Quote)]
    assert len(executed) == 1, results
    assert all(isinstance(r, QuoteAlreadyExecuted) for r in results if not isinstance(r, Quote))
    assert JournalEntry.objects.filter(kind="quote").count() == 1
    assert Balance.objects.get(account__client=alice, asset_id="USD").amount == D("899.03")
    assert inventory("BTC") == D("9")
    assert_books_consistent()


def test_one_quote_executed_by_many_threads_with_the_same_key_returns_one_result(desk, clock):
    alice = client_with(USD="1000")
    quote = quotes.quote_create(account=alice, market=desk, side="buy", size=D("1"), acting_user=None)
    start = threading.Barrier(THREADS)

    results = run_in_threads(lambda i: attempt(quote, "the-key", start), range(THREADS), threads=THREADS)

    assert all(isinstance(r, Quote) for r in results), results
    assert {(r.pk, r.entry_id, r.executed_at) for r in results} == {(quote.pk, results[0].entry_id, clock.at)}
    assert JournalEntry.objects.filter(kind="quote").count() == 1
    assert Balance.objects.get(account__client=alice, asset_id="USD").amount == D("899.03")
    assert_books_consistent()


def test_concurrent_quotes_never_exceed_the_inventory_together(desk, clock):
    """Six clients each execute a quote for 2 BTC at once; the firm holds 10 BTC and may not go short: five
    settle, the sixth is rejected, whatever the interleaving."""
    quotes.market_pricing_set(market=desk, fallback_price=D("100.00"), acting_user=superuser())
    pending = [quotes.quote_create(account=client_with(USD="1000"), market=desk, side="buy", size=D("2"),
                                   acting_user=None) for _ in range(6)]
    start = threading.Barrier(len(pending))

    results = run_in_threads(lambda q: attempt(q, "k", start), pending, threads=len(pending))

    assert sum(isinstance(r, Quote) for r in results) == 5, results
    assert sum(isinstance(r, QuoteRejected) for r in results) == 1
    assert inventory("BTC") == 0
    assert_books_consistent()


def test_the_limit_is_decided_under_the_inventory_lock(desk, clock):
    """Both executions pass every check made before posting (the committed position is 10 BTC, each takes 6),
    then wait on the inventory's BTC balance row; the first to get it commits, the second then finds the
    position it left and is rejected: the check after posting, under the lock, is what holds the limit."""
    quotes.market_pricing_set(market=desk, fallback_price=D("100.00"), acting_user=superuser())
    first, second = (quotes.quote_create(account=client_with(USD="1000"), market=desk, side="buy", size=D("6"),
                                         acting_user=None) for _ in range(2))
    row = Balance.objects.get(account__code="firm:inventory", asset_id="BTC")

    with ThreadPoolExecutor(max_workers=2) as pool, RowLock(row) as lock:
        futures = [in_thread(pool, attempt, q, "k", threading.Barrier(1)) for q in (first, second)]
        wait_until(lambda: _blocked_backends() >= 2, seconds=SECONDS, what="both executions wait for the row")
        assert not any(f.done() for f in futures)
        lock.release()
        results = [f.result(timeout=SECONDS) for f in futures]

    assert sorted(type(r).__name__ for r in results) == ["Quote", "QuoteRejected"], results
    assert inventory("BTC") == D("4")
    assert Quote.objects.filter(status=QuoteStatus.EXECUTED).count() == 1
    assert_books_consistent()


def _blocked_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND cardinality(pg_blocking_pids(pid)) > 0")
        return cursor.fetchone()[0]

