"""Held-rate quotes through the services: priced from the firm's own book, held until they expire, executed once
at exactly the quoted price in one balanced entry against the firm's inventory, or refused with nothing left
behind. Worked examples to the last unit, on the book of ``tests.trading.quote_desk``."""

from datetime import timedelta
from decimal import Decimal as D

import pytest

from accounts.errors import AccountNotOperational
from audit.models import AuditLog
from ledger.errors import InsufficientFunds
from ledger.models import JournalEntry, Posting, Purpose
from ledger.selectors import trial_balance
from ledger.services import firm_account
from tests.factories import assert_balance
from tests.trading.helpers import match, place
from tests.trading.quote_desk import books_snapshot, client_with, inventory, inventory_fund, limits_set, superuser
from trading.errors import (
    ExposureLimitExceeded,
    InvalidOrder,
    MarketNotOpen,
    PriceUnavailable,
    QuoteAlreadyExecuted,
    QuoteExpired,
    QuoteRejected,
)
from trading.models import InventoryLimit, MarketStatus, Quote, QuoteStatus, SpreadChange
from trading.services import order_cancel, quotes

pytestmark = pytest.mark.django_db


def quote(account, market, side="buy", size=None, funds=None):
    return quotes.quote_create(account=account, market=market, side=side, acting_user=None,
                               size=None if size is None else D(size), funds=None if funds is None else D(funds))


def execute(q, key="key-1"):
    return quotes.quote_execute(quote=q, idempotency_key=key, acting_user=None)


def postings_of(entry) -> dict:
    return {(p.account.code if p.account.client_id is None else "client", p.asset_id): p.amount
            for p in Posting.objects.filter(entry=entry).select_related("account")}


def test_a_buy_is_quoted_from_the_book_and_executed_at_the_quoted_price_to_the_last_unit(desk, clock):
    alice = client_with(USD="1000")
    q = quote(alice, desk, "buy", size="1")

    # asks 0.5 @ 100 + 0.5 @ 101: reference 100.50; standard tier, default 25 bps: 100.75125 -> 100.76;
    # notional 100.76, taker fee 0.2% = 0.20152 -> 0.21; total 100.97; spread captured 100.76 - 100.50
    assert (q.reference_price, q.reference_source, q.spread_bps, q.price) == (D("100.5"), "book", D(25), D("100.76"))
    assert (q.quote_amount, q.fee, q.total, q.spread_captured) == (D("100.76"), D("0.21"), D("100.97"), D("0.26"))
    assert q.status == QuoteStatus.OPEN and q.expires_at == clock.at + timedelta(seconds=30)
    assert JournalEntry.objects.filter(kind="quote").count() == 0  # a quote reserves nothing
    assert_balance(alice, "USD", "1000", held="0")

    clock.advance(seconds=29)
    executed = execute(q)

    assert executed.status == QuoteStatus.EXECUTED and executed.executed_at == clock.at
    entry = JournalEntry.objects.get(kind="quote")
    assert entry.key == f"quote:{q.pk}" and executed.entry == entry
    assert postings_of(entry) == {
        ("client", "USD"): D("100.97"), ("firm:inventory", "USD"): D("-100.76"), ("firm:fees", "USD"): D("-0.21"),
        ("client", "BTC"): D("-1"), ("firm:inventory", "BTC"): D("1"),
    }
    assert_balance(alice, "USD", "899.03")
    assert_balance(alice, "BTC", "1")
    assert (inventory("USD"), inventory("BTC")) == (D("100100.76"), D("9"))
    assert_balance(firm_account(Purpose.FEES), "USD", "0.21")
    assert all(total == 0 for total in trial_balance().values())
    assert list(AuditLog.objects.filter(object_type="trading.quote").values_list("action", flat=True)
                .order_by("id")) == ["quote.create", "quote.execute"]


def test_a_sell_is_quoted_from_the_bids(desk, clock):
    bob = client_with(BTC="2")
    q = quote(bob, desk, "sell", size="1.5")

    # bids 1.0 @ 99 + 0.5 @ 98 = 148.00 for 1.5; 148 x 0.9975 / 1.5 = 98.42 exactly; notional 147.63;
    # fee 0.29526 -> 0.30; the client receives 147.33
    assert (q.reference_price, q.price) == (D("98.666666666666666667"), D("98.42"))
    assert (q.quote_amount, q.fee, q.total, q.spread_captured) == (D("147.63"), D("0.30"), D("147.33"), D("0.37"))

    entry = execute(q).entry
    assert postings_of(entry) == {
        ("client", "BTC"): D("1.5"), ("firm:inventory", "BTC"): D("-1.5"),
        ("firm:inventory", "USD"): D("147.63"), ("client", "USD"): D("-147.33"), ("firm:fees", "USD"): D("-0.30"),
    }
    assert_balance(bob, "BTC", "0.5")
    assert_balance(bob, "USD", "147.33")
    assert (inventory("BTC"), inventory("USD")) == (D("11.5"), D("99852.37"))


def test_a_larger_quote_walks_deeper_and_gets_a_worse_price(desk, clock):
    alice = client_with(USD="100000")
    prices = [quote(alice, desk, "buy", size=size).price for size in ("0.5", "1", "2", "3.5")]
    # references 100, 100.50, 101.25, (50 + 101 + 206) / 3.5 = 102; x 1.0025 rounded up
    assert prices == [D("100.25"), D("100.76"), D("101.51"), D("102.26")]


def test_a_quote_by_funds_buys_the_largest_size_within_them(desk, clock):
    alice = client_with(USD="1000")
    q = quote(alice, desk, "buy", funds="100.97")
    assert (q.size, q.price, q.total, q.funds) == (D("1.00000"), D("100.76"), D("100.97"), D("100.97"))
    smaller = quote(alice, desk, "buy", funds="100.96")
    assert smaller.size < 1 and smaller.total <= D("100.96")
    # a sell at 99 x 0.9975 -> 98.75: 0.50754 gives 50.11 less a 0.11 fee = 50.00; 0.50755 would give 50.01
    sell = quote(client_with(BTC="5"), desk, "sell", funds="50")
    assert (sell.size, sell.price, sell.quote_amount, sell.fee, sell.total) == (
        D("0.50754"), D("98.75"), D("50.11"), D("0.11"), D("50.00"))


def test_a_thin_book_is_priced_with_the_fallback_or_not_at_all(desk, clock):
    alice = client_with(USD="1000000")
    with pytest.raises(PriceUnavailable):
        quote(alice, desk, "buy", size="5")
    quotes.market_pricing_set(market=desk, fallback_price=D("105.00"), acting_user=superuser())
    q = quote(alice, desk, "buy", size="5")
    assert (q.reference_price, q.reference_source, q.price) == (D("102.9"), "book+fallback", D("103.16"))
    # a fallback older than QUOTE_FALLBACK_MAX_AGE_SECONDS is not used
    clock.advance(hours=1, seconds=1)
    with pytest.raises(PriceUnavailable):
        quote(alice, desk, "buy", size="5")


def test_expiry_at_the_boundary(desk, clock):
    alice = client_with(USD="1000")
    early, late = quote(alice, desk, "buy", size="0.1"), quote(alice, desk, "buy", size="0.1")
    clock.advance(seconds=30, microseconds=-1)
    assert execute(early, key="a").status == QuoteStatus.EXECUTED
    clock.advance(microseconds=1)  # exactly expires_at
    before = books_snapshot()
    with pytest.raises(QuoteExpired) as refused:
        execute(late, key="b")
    assert refused.value.code == "quote_expired" and refused.value.http_status == 409
    assert books_snapshot() == before
    late.refresh_from_db()
    assert late.status == QuoteStatus.OPEN and late.status_at(clock.at) == "expired"


def test_executing_again_with_the_same_key_replays_and_posts_once(desk, clock):
    alice = client_with(USD="1000")
    q = quote(alice, desk, "buy", size="1")
    first = execute(q, key="k")
    before = books_snapshot()
    again = execute(q, key="k")
    assert (again.pk, again.entry_id, again.executed_at) == (first.pk, first.entry_id, first.executed_at)
    assert books_snapshot() == before
    with pytest.raises(QuoteAlreadyExecuted):
        execute(q, key="other")
    assert books_snapshot() == before
    assert JournalEntry.objects.filter(kind="quote").count() == 1
    assert AuditLog.objects.filter(action="quote.execute").count() == 1


def test_insufficient_funds_at_execution_leaves_nothing_behind(desk, clock):
    alice = client_with(USD="100.96")  # one cent short of 100.97
    q = quote(alice, desk, "buy", size="1")
    before = books_snapshot()
    with pytest.raises(InsufficientFunds) as refused:
        execute(q)
    assert refused.value.code == "insufficient_funds"
    assert books_snapshot() == before
    q.refresh_from_db()
    assert q.status == QuoteStatus.OPEN


def test_exposure_limits_refuse_quotes_beyond_them(desk, clock):
    alice = client_with(USD="10000000")
    limits_set("BTC", max_long="100", max_short="0")  # the firm holds 10 BTC and may not go short
    with pytest.raises(PriceUnavailable):  # the book holds 3.5 BTC of asks and there is no fallback
        quote(alice, desk, "buy", size="11")
    quotes.market_pricing_set(market=desk, fallback_price=D("110.00"), acting_user=superuser())
    with pytest.raises(ExposureLimitExceeded) as refused:
        quote(alice, desk, "buy", size="10.00001")
    assert refused.value.code == "exposure_limit_exceeded" and "beyond its short limit 0" in refused.value.message
    assert quote(alice, desk, "buy", size="10").size == D("10")
    limits_set("BTC", max_long="10.5")  # a client sell would take the firm above its long limit
    with pytest.raises(ExposureLimitExceeded):
        quote(client_with(BTC="1"), desk, "sell", size="0.6")
    InventoryLimit.objects.filter(asset_id="BTC").delete()  # an asset without limits is not quoted
    with pytest.raises(ExposureLimitExceeded, match="no exposure limit in BTC"):
        quote(alice, desk, "buy", size="0.1")


def test_exposure_limits_are_checked_again_at_execution(desk, clock):
    alice, bob = client_with(USD="100000"), client_with(USD="100000")
    quotes.market_pricing_set(market=desk, fallback_price=D("100.00"), acting_user=superuser())
    first, second = quote(alice, desk, "buy", size="6"), quote(bob, desk, "buy", size="6")  # 12 of the 10 BTC
    execute(first)
    before = books_snapshot()
    with pytest.raises(QuoteRejected) as refused:
        execute(second)
    assert refused.value.code == "quote_rejected" and "short limit" in refused.value.message
    assert books_snapshot() == before
    assert inventory("BTC") == D("4")


def test_a_halted_market_rejects_execution(desk, clock):
    alice = client_with(USD="1000")
    q = quote(alice, desk, "buy", size="1")
    desk.status = MarketStatus.HALTED
    desk.save()
    before = books_snapshot()
    with pytest.raises(QuoteRejected, match="halted"):
        execute(q)
    assert books_snapshot() == before
    with pytest.raises(MarketNotOpen):
        quote(alice, desk, "buy", size="1")


def test_the_market_moving_against_the_firm_beyond_the_tolerance_rejects_execution(desk, clock):
    alice = client_with(USD="10000")
    q = quote(alice, desk, "buy", size="0.5")  # reference 100 (the 0.5 ask at 100)
    maker = desk.orders.filter(price=D("100.00")).get()
    order_cancel(order=maker, acting_user=None)  # the best ask is now 101: +100 bps, within the default tolerance
    assert execute(q, key="ok").price == D("100.25")

    q2 = quote(alice, desk, "buy", size="0.5")  # reference 101
    quotes.market_pricing_set(market=desk, tolerance_bps=D("50"), acting_user=superuser())
    order_cancel(order=desk.orders.filter(price=D("101.00")).get(), acting_user=None)  # best ask 103: +198 bps
    before = books_snapshot()
    with pytest.raises(QuoteRejected, match="moved from 101 to 103"):
        execute(q2, key="moved")
    assert books_snapshot() == before
    # in the firm's favour, any move is fine: a sell quoted at 99 executes after the bids rise
    bob = client_with(BTC="1")
    sell = quote(bob, desk, "sell", size="1")
    place(client_with(USD="1000"), desk, "buy", size="1", price="99.50")
    match(desk)
    assert execute(sell, key="up").price == D("98.75")


def test_bad_requests_are_refused_with_stable_codes_and_create_nothing(desk, clock):
    alice = client_with(USD="1000")
    cases = [
        ({"side": "buy"}, "size_or_funds"),
        ({"side": "buy", "size": D("1"), "funds": D("100")}, "size_or_funds"),
        ({"side": "hold", "size": D("1")}, "invalid_choice"),
        ({"side": "buy", "size": D("0.000000001")}, "too_precise"),
        ({"side": "buy", "size": D("0.123456")}, "invalid_lot"),
        ({"side": "buy", "size": D("1001")}, "size_above_maximum"),
        ({"side": "buy", "size": D("-1")}, "not_positive"),
        ({"side": "buy", "funds": D("1.001")}, "too_precise"),
        ({"side": "buy", "funds": D("0.01")}, "size_below_minimum"),
    ]
    for kwargs, code in cases:
        with pytest.raises(InvalidOrder) as refused:
            quotes.quote_create(account=alice, market=desk, acting_user=None, **kwargs)
        assert refused.value.code == code, kwargs
    assert Quote.objects.count() == 0


def test_a_frozen_account_cannot_quote_or_execute(desk, clock):
    alice = client_with(USD="1000")
    q = quote(alice, desk, "buy", size="1")
    alice.status = "frozen"
    alice.save()
    for call in (lambda: quote(alice, desk, "buy", size="1"), lambda: execute(q)):
        with pytest.raises(AccountNotOperational) as refused:
            call()
        assert refused.value.code == "account_frozen"


def test_the_spread_of_a_tier_comes_from_the_approved_change(desk, clock):
    maker, checker = superuser(), superuser()
    alice = client_with(USD="1000")
    change = quotes.spread_change_propose(tier="standard", market=desk, spread_bps=D("10"), reason="tighter",
                                          acting_user=maker)
    assert quote(alice, desk, "buy", size="1").price == D("100.76")  # proposed: nothing changes yet
    quotes.spread_change_approve(change=change, acting_user=checker)
    assert SpreadChange.objects.get().previous_bps is None
    # 100.50 x 1.0010 = 100.6005 -> 100.61
    assert quote(alice, desk, "buy", size="1").price == D("100.61")
    vip = client_with(USD="1000")
    vip.tier = "vip"
    vip.save()
    assert quote(vip, desk, "buy", size="1").spread_bps == D(25)  # another tier keeps the default


def test_inventory_skew_moves_prices_toward_flat(desk, clock):
    alice = client_with(USD="1000")
    limits_set("BTC", max_long="20")  # the firm holds 10 BTC: half its long limit
    quotes.market_pricing_set(market=desk, skew_bps=D("20"), acting_user=superuser())
    q = quote(alice, desk, "buy", size="1")
    # skew -10 bps: markup 15 bps: 100.50 x 1.0015 = 100.65075 -> 100.66
    assert (q.skew_bps, q.price) == (D("-10"), D("100.66"))
    inventory_fund("BTC", "-10")  # flat: no skew
    assert quote(client_with(BTC="1"), desk, "sell", size="0.1").skew_bps == 0
