"""The matcher against PostgreSQL: every order type, settlement to the last unit, holds, replays and crashes."""

from decimal import Decimal

import pytest
from django.db.models import Sum

from ledger import services as ledger
from ledger.models import Balance, HoldStatus, JournalEntry, Posting, Purpose
from ledger.selectors import balance_drift, trial_balance
from tests.factories import ClientAccountFactory, MarketFactory, assert_balance, fund, ledger_account_of
from tests.trading.helpers import match, place, reloaded
from trading import books, services
from trading.errors import MarketNotOpen
from trading.models import Fill, Market, MarketStatus, Order, OrderStatus
from trading.services import settlement

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def market():
    return MarketFactory()  # BTC-USD, tick 0.01, lot 0.00001, maker 0.1%, taker 0.2%


@pytest.fixture
def seller():
    account = ClientAccountFactory()
    fund(account, "BTC", "1")
    return account


@pytest.fixture
def buyer():
    account = ClientAccountFactory()
    fund(account, "USD", "20000")
    return account


def fees():
    return ledger.firm_account(Purpose.FEES)


def assert_conserved():
    """Nothing created or destroyed: custody (what was deposited) equals clients plus fee revenue, per asset."""
    custody = {b.asset_id: b.amount for b in Balance.objects.filter(account=ledger.firm_account(Purpose.CUSTODY))}
    owed = Balance.objects.exclude(account=ledger.firm_account(Purpose.CUSTODY)).values("asset_id").annotate(
        total=Sum("amount"))
    assert {r["asset_id"]: r["total"] for r in owed if r["total"]} == {k: v for k, v in custody.items() if v}
    assert all(total == 0 for total in trial_balance().values())
    assert balance_drift() == []


def hold_of(order):
    order = reloaded(order)
    order.hold.refresh_from_db()
    return order.hold


# --- worked examples ----------------------------------------------------------------------------------------


def test_a_full_trade_between_two_clients_moves_every_unit_exactly(market, seller, buyer):
    ask = place(seller, market, "sell", size="0.5", price="20000")
    assert match(market).fills == 0
    bid = place(buyer, market, "buy", size="0.5", price="20000")
    assert_balance(buyer, "USD", "20000", held="10020.00")  # 10000 + 0.2% taker fee, the worst case
    summary = match(market)

    assert (summary.orders, summary.fills, summary.more) == (1, 1, False)
    assert_balance(seller, "BTC", "0.5", held="0")
    assert_balance(seller, "USD", "9990.00", held="0")  # 10000 - 0.1% maker fee
    assert_balance(buyer, "BTC", "0.5", held="0")
    assert_balance(buyer, "USD", "9980.00", held="0")  # 20000 - 10020
    assert_balance(fees(), "USD", "30.00")
    assert (reloaded(ask).status, reloaded(bid).status) == (OrderStatus.FILLED, OrderStatus.FILLED)
    fill = Fill.objects.get()
    assert (fill.maker_order_id, fill.taker_order_id, fill.aggressor_side) == (ask.pk, bid.pk, "buy")
    assert (fill.quote_amount, fill.maker_fee, fill.taker_fee, fill.buyer_quote, fill.seller_quote) == (
        D("10000"), D("10"), D("20"), D("10020"), D("9990"))
    assert fill.entry.key == f"fill:{ask.pk}:{bid.pk}" and fill.entry.postings.count() == 5
    assert hold_of(bid).status == HoldStatus.CAPTURED and hold_of(ask).status == HoldStatus.CAPTURED
    assert_conserved()


def test_rounding_to_the_last_cent_over_two_fills(market, buyer):
    first, second = ClientAccountFactory(), ClientAccountFactory()
    fund(first, "BTC", "0.01")
    fund(second, "BTC", "0.01")
    place(first, market, "sell", size="0.00123", price="20000.01")
    place(second, market, "sell", size="0.00077", price="20000.01")
    bid = place(buyer, market, "buy", size="0.002", price="20000.01")
    assert_balance(buyer, "USD", "20000", held="40.09")  # ceil(20000.01 x 0.002 x 1.002 = 40.08002004)
    match(market)

    # Fill 1: notional 24.6000123; buyer owes 24.6492123246 -> 24.65; seller gets 24.5754122877 -> 24.57.
    # Fill 2: notional 15.4000077; buyer owes 40.08002004 in all -> 40.09, so 15.44; seller 15.3846076923 -> 15.38.
    assert_balance(first, "USD", "24.57")
    assert_balance(second, "USD", "15.38")
    assert_balance(buyer, "USD", "19959.91", held="0")
    assert_balance(buyer, "BTC", "0.002")
    assert_balance(fees(), "USD", "0.14")
    assert list(Fill.objects.order_by("id").values_list("buyer_quote", "seller_quote")) == [
        (D("24.65"), D("24.57")), (D("15.44"), D("15.38"))]
    bid = reloaded(bid)
    assert (bid.filled_quote, bid.fees_paid, bid.settled_quote) == (D("40.00002"), D("0.08000004"), D("40.09"))
    assert_conserved()


def test_market_buy_by_funds_spends_at_most_its_funds_fees_included(market):
    first, second, buyer = ClientAccountFactory(), ClientAccountFactory(), ClientAccountFactory()
    fund(first, "BTC", "0.001")
    fund(second, "BTC", "0.01")
    fund(buyer, "USD", "1000")
    place(first, market, "sell", size="0.001", price="30000")
    place(second, market, "sell", size="0.01", price="31000")
    order = place(buyer, market, "buy", type="market", funds="100")
    assert_balance(buyer, "USD", "1000", held="100.00")
    match(market)

    # 0.001 @ 30000 costs 30.06 with the fee; 69.94 left buy 0.00225 @ 31000 (69.8895), not 0.00226 (70.20012).
    order = reloaded(order)
    assert (order.status, order.filled_size, order.settled_quote) == (OrderStatus.FILLED, D("0.00325"), D("99.95"))
    assert_balance(buyer, "USD", "900.05", held="0")  # 99.9495 rounded up; the 0.05 left is released
    assert_balance(buyer, "BTC", "0.00325")
    assert_balance(first, "USD", "29.97")
    assert_balance(second, "USD", "69.68")  # 69.75 - 0.06975 rounded down
    assert_balance(fees(), "USD", "0.30")
    assert_conserved()


def test_market_buy_by_funds_that_sweeps_the_book_with_its_exact_funds_is_filled(market, seller):
    buyer = ClientAccountFactory()
    fund(buyer, "USD", "100")
    place(seller, market, "sell", size="0.001", price="30000")
    order = place(buyer, market, "buy", type="market", funds="30.06")  # 30 + 0.2% taker fee
    match(market)

    order = reloaded(order)
    assert (order.status, order.reason, order.filled_size, order.settled_quote) == (
        OrderStatus.FILLED, "", D("0.001"), D("30.06"))
    assert hold_of(order).remaining == 0
    assert_balance(buyer, "USD", "69.94", held="0")
    assert_conserved()


@pytest.mark.parametrize("funds", ["30.06", "30.07"])  # spent exactly; 0.01 left, which buys nothing at 31000
def test_market_buy_by_funds_that_cannot_buy_its_own_next_order_is_filled_and_leaves_it(market, funds):
    trader, first, second = ClientAccountFactory(), ClientAccountFactory(), ClientAccountFactory()
    fund(trader, "USD", "1000")
    fund(trader, "BTC", "0.001")
    fund(first, "BTC", "0.001")
    fund(second, "BTC", "0.001")
    place(first, market, "sell", size="0.001", price="30000")
    own = place(trader, market, "sell", size="0.001", price="31000")
    place(second, market, "sell", size="0.001", price="32000")
    match(market)
    order = place(trader, market, "buy", type="market", funds=funds, stp="cancel_oldest")
    match(market)

    order = reloaded(order)
    assert (order.status, order.reason, order.filled_size, order.settled_quote) == (
        OrderStatus.FILLED, "", D("0.001"), D("30.06"))
    assert reloaded(own).status == OrderStatus.OPEN and hold_of(own).remaining == D("0.001")
    assert hold_of(order).remaining == 0
    assert_balance(trader, "USD", "969.94", held="0")  # what was not spent is released
    assert_balance(trader, "BTC", "0.002", held="0.001")  # bought 0.001; the own ask still holds its size
    assert_conserved()


def test_market_buy_by_size_holds_the_available_balance_and_releases_the_rest(market, seller, buyer):
    place(seller, market, "sell", size="0.1", price="20000")
    order = place(buyer, market, "buy", type="market", size="0.05")
    assert_balance(buyer, "USD", "20000", held="20000.00")
    match(market)
    assert reloaded(order).status == OrderStatus.FILLED
    assert_balance(buyer, "USD", "18998.00", held="0")  # 1000 + 2 taker fee
    assert_balance(buyer, "BTC", "0.05")
    assert_conserved()


def test_market_sell_walks_the_book_and_cancels_what_finds_no_liquidity(market, seller):
    bidder = ClientAccountFactory()
    fund(bidder, "USD", "5000")
    place(bidder, market, "buy", size="0.1", price="20000")
    place(bidder, market, "buy", size="0.1", price="19000")
    order = place(seller, market, "sell", type="market", size="0.3")
    match(market)
    order = reloaded(order)
    assert (order.status, order.reason, order.filled_size) == (OrderStatus.CANCELLED, "no_liquidity", D("0.2"))
    assert_balance(seller, "BTC", "0.8", held="0")
    assert_balance(seller, "USD", str(D("3900") - D("7.80")))  # notional 3900, taker fee 0.2%
    assert_conserved()


# --- time in force, partial fills, post-only, self-trade prevention ----------------------------------------


def test_gtc_partial_fill_rests_the_remainder_with_its_hold_reduced_exactly(market, seller, buyer):
    bid = place(buyer, market, "buy", size="0.3", price="10000")
    match(market)
    assert_balance(buyer, "USD", "20000", held="3006.00")
    place(seller, market, "sell", size="0.1", price="9000")
    match(market)
    bid = reloaded(bid)
    assert (bid.status, bid.filled_size) == (OrderStatus.PARTIALLY_FILLED, D("0.1"))
    # The maker pays 0.1% on 1000 at its own price: 1001.00 captured, 2005.00 still held for 0.2 at 10000.
    assert_balance(buyer, "USD", "18999.00", held="2005.00")
    assert hold_of(bid).remaining == D("2005.00")
    assert_conserved()


def test_ioc_fills_what_it_can_and_cancels_the_rest(market, seller, buyer):
    place(seller, market, "sell", size="0.1", price="10000")
    bid = place(buyer, market, "buy", size="0.3", price="10000", time_in_force="ioc")
    match(market)
    bid = reloaded(bid)
    assert (bid.status, bid.reason, bid.filled_size) == (OrderStatus.CANCELLED, "ioc_remainder", D("0.1"))
    assert_balance(buyer, "USD", "18998.00", held="0")
    assert hold_of(bid).status == HoldStatus.RELEASED
    assert not Order.objects.filter(status__in=[OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED], side="buy").exists()


def test_fok_that_cannot_fill_completely_does_nothing(market, seller, buyer):
    ask = place(seller, market, "sell", size="0.1", price="10000")
    bid = place(buyer, market, "buy", size="0.2", price="10000", time_in_force="fok")
    match(market)
    assert (reloaded(bid).status, reloaded(bid).reason) == (OrderStatus.CANCELLED, "fok_not_fillable")
    assert reloaded(ask).status == OrderStatus.OPEN and not Fill.objects.exists()
    assert_balance(buyer, "USD", "20000", held="0")
    filled = place(buyer, market, "buy", size="0.1", price="10000", time_in_force="fok")
    match(market)
    assert reloaded(filled).status == OrderStatus.FILLED


def test_post_only_is_rejected_when_it_would_take_and_rests_otherwise(market, seller, buyer):
    place(seller, market, "sell", size="0.1", price="10000")
    taking = place(buyer, market, "buy", size="0.1", price="10000", post_only=True)
    making = place(buyer, market, "buy", size="0.1", price="9999.99", post_only=True)
    match(market)
    assert (reloaded(taking).status, reloaded(taking).reason) == (OrderStatus.REJECTED, "post_only_would_cross")
    assert reloaded(making).status == OrderStatus.OPEN
    assert_balance(buyer, "USD", "20000", held="1001.00")  # post-only holds at the maker rate: 999.999 + 0.1%
    assert not Fill.objects.exists()


def test_self_trade_prevention_cancel_newest(market):
    trader = ClientAccountFactory()
    fund(trader, "BTC", "1")
    fund(trader, "USD", "20000")
    ask = place(trader, market, "sell", size="0.1", price="10000")
    bid = place(trader, market, "buy", size="0.1", price="10000")
    match(market)
    assert reloaded(ask).status == OrderStatus.OPEN
    assert (reloaded(bid).status, reloaded(bid).reason) == (OrderStatus.CANCELLED, "self_trade_prevented")
    assert_balance(trader, "USD", "20000", held="0")
    assert not Fill.objects.exists()


def test_self_trade_prevention_cancel_oldest(market, seller):
    trader = ClientAccountFactory()
    fund(trader, "BTC", "1")
    fund(trader, "USD", "20000")
    own = place(trader, market, "sell", size="0.1", price="10000")
    other = place(seller, market, "sell", size="0.1", price="10000")
    bid = place(trader, market, "buy", size="0.1", price="10000", stp="cancel_oldest")
    match(market)
    assert (reloaded(own).status, reloaded(own).reason) == (OrderStatus.CANCELLED, "self_trade_prevented")
    assert reloaded(other).status == OrderStatus.FILLED and reloaded(bid).status == OrderStatus.FILLED
    assert_balance(trader, "BTC", "1.1", held="0")
    assert_conserved()


# --- cancels ----------------------------------------------------------------------------------------------


def test_cancelling_a_partly_filled_order_releases_exactly_what_is_left(market, seller, buyer):
    bid = place(buyer, market, "buy", size="0.3", price="10000")
    place(seller, market, "sell", size="0.1", price="10000")
    match(market)
    services.order_cancel(order=bid, acting_user=None)
    assert_balance(buyer, "USD", "18999.00", held="0")  # 1000 + 1.00 maker fee spent, the rest is free
    assert hold_of(bid).status == HoldStatus.RELEASED
    # The matcher's in-memory book learns of the cancel: a new sell finds nothing to trade with.
    ask = place(seller, market, "sell", size="0.1", price="10000")
    match(market)
    assert reloaded(ask).status == OrderStatus.OPEN and Fill.objects.count() == 1


def test_a_new_order_cancelled_before_matching_is_skipped(market, seller, buyer):
    place(seller, market, "sell", size="0.1", price="10000")
    match(market)
    bid = place(buyer, market, "buy", size="0.1", price="10000")
    services.order_cancel(order=bid, acting_user=None)
    assert match(market).orders == 0
    assert not Fill.objects.exists()
    assert_balance(buyer, "USD", "20000", held="0")


def test_cancel_all_in_one_market(market, seller):
    other_market = MarketFactory(symbol="ETH-USD", base_id="ETH", lot_size=D("0.0001"), min_size=D("0.0001"))
    fund(seller, "ETH", "1")
    in_market = [place(seller, market, "sell", size="0.1", price=p) for p in ("10000", "10001")]
    match(market)
    elsewhere = place(seller, other_market, "sell", size="0.1", price="3000")
    cancelled = services.orders_cancel_all(account=seller, market=market, acting_user=None)
    assert sorted(o.pk for o in cancelled) == sorted(o.pk for o in in_market)
    assert reloaded(elsewhere).status == OrderStatus.NEW
    assert_balance(seller, "BTC", "1", held="0")
    assert Market.objects.get(pk=market.pk).cancel_seq == 1


# --- robustness -------------------------------------------------------------------------------------------


def test_a_replayed_run_finds_nothing_and_changes_nothing(market, seller, buyer):
    place(seller, market, "sell", size="0.1", price="10000")
    place(buyer, market, "buy", size="0.1", price="10000")
    assert match(market).fills == 1
    entries, postings = JournalEntry.objects.count(), Posting.objects.count()
    again = match(market)
    assert (again.orders, again.fills) == (0, 0)
    assert (JournalEntry.objects.count(), Posting.objects.count(), Fill.objects.count()) == (entries, postings, 1)


def test_a_duplicate_task_does_nothing(market, seller, buyer):
    from trading.tasks import match_market

    place(seller, market, "sell", size="0.1", price="10000")
    place(buyer, market, "buy", size="0.1", price="10000")
    first, second = match_market(market.pk), match_market(market.pk)
    assert (first["fills"], second["fills"], second["orders"]) == (1, 0, 0)


def test_a_crash_mid_batch_rolls_everything_back_and_the_next_run_redoes_it(market, seller, buyer, monkeypatch):
    place(seller, market, "sell", size="0.1", price="10000")
    match(market)
    bid = place(buyer, market, "buy", size="0.1", price="10000")

    def crash(*args, **kwargs):
        raise RuntimeError("worker died after posting the ledger batch")

    monkeypatch.setattr(settlement, "_orders_save", crash)  # runs after fills, entries and holds were written
    with pytest.raises(RuntimeError):
        match(market)
    assert reloaded(bid).status == OrderStatus.NEW and not Fill.objects.exists()
    assert not JournalEntry.objects.filter(kind="trade").exists()
    assert_balance(buyer, "USD", "20000", held="1002.00")
    assert market.pk not in books._books  # the in-memory book was thrown away with the transaction

    monkeypatch.undo()
    assert match(market).fills == 1
    assert reloaded(bid).status == OrderStatus.FILLED and Fill.objects.count() == 1
    assert_balance(buyer, "USD", "18998.00", held="0")
    assert_conserved()


def test_a_halted_market_is_not_matched_until_reopened(market, seller, buyer, django_capture_on_commit_callbacks):
    place(seller, market, "sell", size="0.1", price="10000")
    bid = place(buyer, market, "buy", size="0.1", price="10000")
    services.market_status_set(market=market, status=MarketStatus.HALTED, acting_user=None)
    assert match(market).status == MarketStatus.HALTED
    assert reloaded(bid).status == OrderStatus.NEW and not Fill.objects.exists()
    with pytest.raises(MarketNotOpen):
        place(buyer, Market.objects.get(pk=market.pk), "buy", size="0.1", price="10000")

    services.market_status_set(market=market, status=MarketStatus.CANCEL_ONLY, acting_user=None)
    assert match(market).status == MarketStatus.CANCEL_ONLY
    services.order_cancel(order=bid, acting_user=None)  # cancels are allowed
    assert_balance(buyer, "USD", "20000", held="0")

    with django_capture_on_commit_callbacks() as callbacks:
        services.market_status_set(market=market, status=MarketStatus.OPEN, acting_user=None)
    assert [c.__qualname__.split('.')[0] for c in callbacks] == ["written_on_commit", "market_wake_on_commit"]
    # reopening wakes the matcher (and the event sequencer, for market.status_changed)


def test_a_stale_book_is_rebuilt_when_another_process_matched_the_market(market, seller, buyer):
    place(seller, market, "sell", size="0.2", price="10000")
    match(market)
    stale = books._books[market.pk]
    books.books_clear()  # "another worker process" with no book of its own matches next
    place(buyer, market, "buy", size="0.1", price="10000")
    match(market)
    books._books[market.pk] = stale  # back in the first process: its book still shows 0.2 for sale
    place(buyer, market, "buy", size="0.2", price="10000")
    match(market)
    assert Fill.objects.aggregate(total=Sum("size"))["total"] == D("0.2")  # not 0.3: the book was rebuilt
    assert_conserved()


def test_batches_are_bounded_and_say_when_more_remain(market, seller, buyer, settings):
    settings.MATCHER_BATCH_SIZE = 2
    for price in ("10000", "10001", "10002"):
        place(seller, market, "sell", size="0.1", price=price)
    first = match(market)
    second = match(market)
    assert (first.orders, first.more, second.orders, second.more) == (2, True, 1, False)


def test_the_market_lock_serialises_matchers(market, seller, buyer):
    import psycopg
    from django.db import connection

    place(seller, market, "sell", size="0.1", price="10000")
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")},
                         autocommit=False) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", [services.LOCK_NAMESPACE, market.pk])
        assert match(market).locked is False
        other.rollback()
    assert match(market).orders == 1


def test_fee_schedule_of_the_client_tier_overrides_the_market_rates(market, seller):
    from trading.models import FeeSchedule

    vip = ClientAccountFactory(tier="vip")
    fund(vip, "USD", "20000")
    FeeSchedule.objects.create(tier="vip", market=None, maker_fee_rate=D("0.0005"), taker_fee_rate=D("0.001"))
    FeeSchedule.objects.create(tier="vip", market=market, maker_fee_rate=D("0"), taker_fee_rate=D("0.0005"))
    place(seller, market, "sell", size="0.1", price="10000")
    bid = place(vip, market, "buy", size="0.1", price="10000")
    assert (bid.maker_fee_rate, bid.taker_fee_rate) == (D("0"), D("0.0005"))
    match(market)
    assert_balance(vip, "USD", "18999.50")  # 1000 + 0.05% taker fee of the market-specific schedule
    assert_balance(ledger_account_of(seller), "USD", "999.00")


def test_the_sweep_wakes_open_markets_with_new_orders_only(market, seller, buyer):
    from trading.tasks import sweep_markets

    halted = MarketFactory(symbol="ETH-USD", base_id="ETH", lot_size=D("0.0001"), min_size=D("0.0001"))
    fund(seller, "ETH", "1")
    stuck = place(seller, halted, "sell", size="0.1", price="3000")
    services.market_status_set(market=halted, status=MarketStatus.HALTED, acting_user=None)
    place(seller, market, "sell", size="0.1", price="10000")
    bid = place(buyer, market, "buy", size="0.1", price="10000")  # wake-ups of both were "lost"
    assert sweep_markets() == [market.pk]  # tasks run in-process here: the sweep matched the market
    assert reloaded(bid).status == OrderStatus.FILLED and reloaded(stuck).status == OrderStatus.NEW
    assert sweep_markets() == []


def test_a_batch_sees_the_market_as_edited_since_the_last_batch(market, buyer, seller):
    """The matcher reuses the market it read while the row's version is unchanged (trading.services.matcher):
    an edit (which moves ``updated_at``) is read again by the next batch."""
    place(seller, market, "sell", size="0.1", price="20000")
    match(market)
    market.symbol = "XBT-USD"
    market.save()
    place(buyer, market, "buy", size="0.1", price="20000")
    match(market)
    [entry] = JournalEntry.objects.filter(kind="trade")
    assert entry.memo.startswith("XBT-USD buy")


def test_a_batch_reads_the_counters_fresh_while_it_reuses_the_market(market, buyer, seller):
    resting = place(seller, market, "sell", size="0.2", price="20000")
    match(market)
    services.order_cancel(order=resting, acting_user=None)  # moves cancel_seq, not updated_at
    place(seller, market, "sell", size="0.1", price="20001")
    place(buyer, market, "buy", size="0.3", price="20001")
    match(market)
    assert reloaded(resting).status == OrderStatus.CANCELLED
    assert Fill.objects.get().price == D("20001")  # the cancelled order did not trade: the book knew
    stored = Market.objects.get(pk=market.pk)
    assert (stored.match_seq, stored.cancel_seq) == (2, 1)
