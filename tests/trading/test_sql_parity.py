"""Each statement of ``trading.sql``: its PostgreSQL variant and its portable twin give the same answer.

The suite runs on PostgreSQL, where the portable twins (plain ORM code for the embedded SQLite default) run too.
Each scenario is built through the real services, then both variants run from the same state: each in a
savepoint that is rolled back, so what one writes the other does not see.
"""

from dataclasses import replace
from decimal import Decimal

import psycopg
import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict

from accounts.models import AssetLimit, Tier
from audit.models import AuditLog
from core.db import models_by_id
from events.models import Event
from ledger.errors import InsufficientFunds
from ledger.models import Balance, Hold
from tests.factories import ClientAccountFactory, MarketFactory, fund
from tests.trading.helpers import match, place
from trading import services, sql
from trading.models import FeeSchedule, Market, MarketStatus, Order

pytestmark = pytest.mark.django_db
D = Decimal


def both(statement: str, run):
    """``run(variant)`` with the PostgreSQL variant of ``statement`` and with its portable twin, each from the
    same starting state. Returns the two results, PostgreSQL's first."""
    results = []
    for variant in (getattr(sql, f"{statement}_postgresql"), getattr(sql, f"{statement}_portable")):
        with transaction.atomic():
            results.append(run(variant))
            transaction.set_rollback(True)
    return results


def test_the_dispatchers_run_the_postgresql_variants_here(monkeypatch):
    assert connection.vendor == "postgresql"  # else these tests would compare each twin with itself
    for statement in ("placement_reads", "market_lock", "cancel_seq_next", "risk_reads"):
        monkeypatch.setattr(sql, f"{statement}_portable", None)  # calling it would fail
    market, account = MarketFactory(), ClientAccountFactory()
    assert sql.placement_reads(account, market, "o-1").market_version[0] == market.pk
    assert sql.market_lock(market.pk, wait=False) is True
    assert sql.cancel_seq_next(market.pk) == 1
    assert sql.risk_reads(account.pk, market.pk, sql.RiskQuery(open_orders=True)).open_orders == 0


# --- placement_reads -----------------------------------------------------------------------------------------


@pytest.fixture
def trader():
    account = ClientAccountFactory()
    fund(account, "USD", "50000")
    return account


def placement_reads(account, market, client_order_id: str, risk=None) -> sql.PlacementReads:
    postgresql, portable = both("placement_reads", lambda reads: reads(account, market, client_order_id, risk))
    # Only PostgreSQL hands out the new order's and hold's ids in advance (placement_write sends one statement).
    assert [type(i) for i in postgresql.new_ids] == [int, int] and portable.new_ids is None
    assert replace(postgresql, new_ids=None) == portable
    return postgresql


def test_placement_reads_of_a_fresh_order_in_an_open_market(trader):
    market = MarketFactory()
    reads = placement_reads(trader, market, "o-1")
    market.refresh_from_db()
    assert replace(reads, new_ids=None) == sql.PlacementReads(
        market_version=(market.pk, MarketStatus.OPEN, market.updated_at), existing_order_id=None, max_order_sizes={},
        fee_schedules={})


def test_placement_reads_find_the_order_stored_under_the_client_order_id(trader):
    market = MarketFactory()
    order = place(trader, market, "buy", size="0.1", price="20000", client_order_id="o-1")
    seller = ClientAccountFactory()
    fund(seller, "BTC", "1")
    place(seller, market, "sell", size="0.1", price="30000", client_order_id="o-2")
    assert placement_reads(trader, market, "o-1").existing_order_id == order.pk
    assert placement_reads(trader, market, "o-2").existing_order_id is None  # another account's id


def test_placement_reads_see_the_market_as_it_is_now_not_as_the_caller_read_it(trader):
    market = MarketFactory()
    stale = Market.objects.get(pk=market.pk)
    services.market_status_set(market=market, status=MarketStatus.HALTED, acting_user=None)
    market.refresh_from_db()
    assert placement_reads(trader, stale, "o-1").market_version == (market.pk, MarketStatus.HALTED, market.updated_at)


def test_placement_reads_of_a_market_that_no_longer_exists(trader):
    gone = Market(pk=999_999, symbol="GONE-USD", base_id="BTC", quote_id="USD")
    assert placement_reads(trader, gone, "o-1").market_version is None


def test_placement_reads_take_the_tier_schedules_of_this_market_and_of_all_markets(trader):
    market = MarketFactory()
    other = MarketFactory(symbol="ETH-USD", base_id="ETH", lot_size=D("0.0001"), min_size=D("0.0001"))
    vip = ClientAccountFactory(tier=Tier.VIP)
    FeeSchedule.objects.create(tier=Tier.VIP, market=market, maker_fee_rate=D("0"), taker_fee_rate=D("0.0005"))
    FeeSchedule.objects.create(tier=Tier.VIP, market=None, maker_fee_rate=D("0.0005"), taker_fee_rate=D("0.001"))
    FeeSchedule.objects.create(tier=Tier.VIP, market=other, maker_fee_rate=D("0.0003"), taker_fee_rate=D("0.0004"))
    FeeSchedule.objects.create(tier=Tier.PROFESSIONAL, market=market, maker_fee_rate=D("0.0001"),
                               taker_fee_rate=D("0.0002"))
    assert placement_reads(vip, market, "o-1").fee_schedules == {
        market.pk: (D("0"), D("0.0005")), None: (D("0.0005"), D("0.001")),
    }
    assert placement_reads(trader, market, "o-1").fee_schedules == {}  # the standard tier has none


def test_placement_reads_take_an_all_markets_schedule_alone(trader):
    market = MarketFactory()
    FeeSchedule.objects.create(tier=trader.tier, market=None, maker_fee_rate=D("0.0007"), taker_fee_rate=D("0.0009"))
    assert placement_reads(trader, market, "o-1").fee_schedules == {None: (D("0.0007"), D("0.0009"))}


def test_placement_reads_take_the_order_size_limits_in_the_market_assets_only(trader):
    market = MarketFactory()
    AssetLimit.objects.create(account=trader, asset_id="BTC", max_order_size=D("0.5"))
    AssetLimit.objects.create(account=trader, asset_id="USD", max_order_size=D("1000"))
    AssetLimit.objects.create(account=trader, asset_id="ETH", max_order_size=D("2"))  # not this market's
    AssetLimit.objects.create(account=ClientAccountFactory(), asset_id="BTC", max_order_size=D("9"))  # not ours
    assert placement_reads(trader, market, "o-1").max_order_sizes == {"BTC": D("0.5"), "USD": D("1000")}


def test_placement_reads_skip_a_limit_without_a_maximum_order_size(trader):
    market = MarketFactory()
    AssetLimit.objects.create(account=trader, asset_id="USD", daily_withdrawal_limit=D("100"))
    assert placement_reads(trader, market, "o-1").max_order_sizes == {}


# --- placement_write -----------------------------------------------------------------------------------------


def placed_with(variant, monkeypatch, account, market, **order):
    """Place an order through ``variant`` of placement_write: what it stored, ids and times left out (the ids
    come from sequences, which a rollback does not rewind)."""
    monkeypatch.setattr(sql, "placement_write", variant)
    placed = place(account, market, **order)
    hold = Hold.objects.get(pk=placed.hold_id)
    audit = AuditLog.objects.get(action="order.place", object_id=str(placed.pk))
    events = [(e.type, e.account_id, e.market_id, dict(e.payload)) for e in Event.objects.order_by("id")]
    for _, _, _, payload in events:
        assert payload.pop("id") in (placed.pk, hold.pk)
        payload.pop("created_at"), payload.pop("updated_at")
    return {
        "order": {k: v for k, v in model_to_dict(placed).items() if k not in ("id", "hold")},
        "hold": (hold.key, hold.account_id, hold.asset_id, hold.amount, hold.remaining, hold.status, hold.reason,
                 hold.created_at == placed.created_at),
        "audit": (audit.actor_id, audit.actor_label, audit.object_type, audit.account_id, audit.after,
                  audit.ip_address),
        "events": events,
        "balance": Balance.objects.filter(account=account.ledger_account).values_list("asset_id", "amount", "held")
        .order_by("asset_id")[::1],
    }


def test_placement_write_stores_the_same_rows_either_way(trader, monkeypatch):
    market = MarketFactory()
    postgresql, portable = both("placement_write", lambda variant: placed_with(
        variant, monkeypatch, trader, market, side="buy", size="0.5", price="20000.00", client_order_id="o-1",
        metadata={"desk": "a"}))
    assert postgresql == portable
    assert postgresql["balance"] == [("USD", D("50000"), D("10020.00"))]
    assert [e[0] for e in postgresql["events"]] == ["order.accepted", "hold.placed"]


def test_placement_write_refuses_a_short_balance_the_same_way(trader, monkeypatch):
    market = MarketFactory()

    def refused(variant):
        with pytest.raises(InsufficientFunds) as refusal:
            placed_with(variant, monkeypatch, trader, market, side="buy", size="3", price="20000.00")
        return refusal.value.field, str(refusal.value)

    assert both("placement_write", refused) == [("size", "Insufficient available USD: 50000.00 available, "
                                                          "60120.00 needed."), ] * 2
    assert not Hold.objects.exists() and not Event.objects.exists()


def test_placement_write_creates_a_missing_balance_row_and_refuses(trader, monkeypatch):
    market = MarketFactory()  # the trader holds no BTC: no BTC balance row yet

    def refused(variant):
        with pytest.raises(InsufficientFunds) as refusal:
            placed_with(variant, monkeypatch, trader, market, side="sell", size="0.5", price="20000.00")
        return refusal.value.field

    assert both("placement_write", refused) == ["size", "size"]


def test_placement_write_refusing_leaves_nothing_behind_even_without_a_savepoint(trader, monkeypatch):
    market = MarketFactory()  # no BTC: the sell is refused by the lock-and-check path, the buy by the statement

    def refused_then_placed(variant):
        monkeypatch.setattr(sql, "placement_write", variant)
        for side, size in (("buy", "3"), ("sell", "0.5")):
            with pytest.raises(InsufficientFunds):
                services.order_place(account=trader, market=market, side=side, type="limit", size=D(size),
                                     price=D("20000.00"), client_order_id=f"o-{side}", acting_user=None,
                                     savepoint=False)
        left = (Hold.objects.count(), Order.objects.count(), Event.objects.count(),
                AuditLog.objects.filter(action="order.place").count())
        placed = place(trader, market, "buy", size="0.5", price="20000.00", client_order_id="o-buy")  # goes on
        return left, placed.hold.amount

    assert both("placement_write", refused_then_placed) == [((0, 0, 0, 0), D("10020.00"))] * 2


# --- market_lock ---------------------------------------------------------------------------------------------


def test_market_lock_both_take_a_free_lock_waiting_or_trying():
    market = MarketFactory()
    for wait in (True, False):
        assert both("market_lock", lambda lock: lock(market.pk, wait=wait)) == [True, True]


def test_market_lock_both_take_it_again_in_the_transaction_that_holds_it():
    market = MarketFactory()
    again = both("market_lock", lambda lock: (lock(market.pk, wait=True), lock(market.pk, wait=False)))
    assert again == [(True, True), (True, True)]


def test_market_lock_held_elsewhere_is_refused_only_by_the_postgresql_variant():
    """Where the two differ, on purpose: the portable twin takes no lock, because SQLite lets one transaction
    write at a time. So a lock held by another session is only testable against the PostgreSQL variant."""
    market = MarketFactory()
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")},
                         autocommit=False) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", [sql.LOCK_NAMESPACE, market.pk])
        assert both("market_lock", lambda lock: lock(market.pk, wait=False)) == [False, True]
        other.rollback()


# --- cancel_seq_next -----------------------------------------------------------------------------------------


def cancel_seq_runs(market_id: int):
    """Two cancels in a row, and the number the market row keeps."""
    def run(cancel_seq_next):
        numbers = (cancel_seq_next(market_id), cancel_seq_next(market_id))
        return numbers, Market.objects.get(pk=market_id).cancel_seq
    return run


def test_cancel_seq_next_counts_on_from_the_cancels_of_resting_orders(trader):
    market = MarketFactory()
    other = MarketFactory(symbol="ETH-USD", base_id="ETH", lot_size=D("0.0001"), min_size=D("0.0001"))
    resting = [place(trader, market, "buy", size="0.1", price=price) for price in ("19000", "19500")]
    match(market)
    for order in resting:
        services.order_cancel(order=order, acting_user=None)
    assert Market.objects.get(pk=market.pk).cancel_seq == 2
    postgresql, portable = both("cancel_seq_next", cancel_seq_runs(market.pk))
    assert postgresql == portable == ((3, 4), 4)
    postgresql, portable = both("cancel_seq_next", cancel_seq_runs(other.pk))  # each market counts its own
    assert postgresql == portable == ((1, 2), 2)
    assert Market.objects.get(pk=market.pk).cancel_seq == 2  # both rolled back


# --- the matcher's batch: market_version, orders_new, orders_with_holds, match_seq_next ------------------------


def orders_seen(orders) -> list[tuple]:
    """Each order's every field and its hold's, as loaded (the hold without a query: select_related's cache)."""
    return [(model_to_dict(o) | {"id": o.pk},
             None if o._state.fields_cache["hold"] is None else model_to_dict(o._state.fields_cache["hold"]))
            for o in orders]


def test_market_version_reads_the_row_as_it_is_now(trader):
    market = MarketFactory()
    sql.cancel_seq_next(market.pk)
    postgresql, portable = both("market_version", lambda version: version(market.pk))
    stored = Market.objects.get(pk=market.pk)
    assert postgresql == portable == (stored.created_at, "open", stored.updated_at, 0, 1)
    assert both("market_version", lambda version: version(999_999)) == [None, None]


def test_orders_new_takes_the_oldest_new_orders_of_the_market_with_their_holds(trader):
    market = MarketFactory()
    other = MarketFactory(symbol="ETH-USD", base_id="ETH", lot_size=D("0.0001"), min_size=D("0.0001"))
    resting = place(trader, market, "buy", size="0.1", price="19000", metadata={"desk": "a"})
    match(market)  # now open, no longer new
    waiting = [place(trader, market, "buy", size="0.1", price=price) for price in ("19100", "19200", "19300")]
    place(trader, other, "buy", size="0.1", price="1000")
    postgresql, portable = both("orders_new", lambda new: orders_seen(new(market.pk, 2)))
    assert postgresql == portable
    assert [row["id"] for row, _ in postgresql] == [o.pk for o in waiting[:2]]
    assert [hold["id"] for _, hold in postgresql] == [o.hold_id for o in waiting[:2]]
    assert resting.pk not in [row["id"] for row, _ in both("orders_new", lambda new: orders_seen(new(market.pk, 9)))[0]]


def test_orders_with_holds_loads_those_orders_with_their_holds_and_metadata(trader):
    market = MarketFactory()
    orders = [place(trader, market, "buy", size="0.1", price=price, metadata={"n": price})
              for price in ("19000", "19100")]
    orders.append(place(trader, market, "buy", type="market", funds="100"))
    ids = [orders[0].pk, orders[2].pk, 999_999]
    postgresql, portable = both("orders_with_holds", lambda load: sorted(orders_seen(load(ids)), key=lambda r: r[0]["id"]))
    assert postgresql == portable
    assert [row["metadata"] for row, _ in postgresql] == [{"n": "19000"}, {}]


def test_match_seq_next_counts_one_batch_more(trader):
    market = MarketFactory()

    def run(variant):
        variant(market.pk)
        return Market.objects.get(pk=market.pk).match_seq

    assert both("match_seq_next", run) == [1, 1]
    assert Market.objects.get(pk=market.pk).match_seq == 0  # both rolled back


# --- risk_reads ----------------------------------------------------------------------------------------------


def risk_reads(account, market, **kwargs) -> sql.RiskReads:
    query = sql.RiskQuery(**{"reference": True, "open_orders": True, "daily_since": None, **kwargs})
    postgresql, portable = both("risk_reads", lambda reads: reads(account.pk, market.pk, query))
    assert postgresql == portable
    within_placement = placement_reads(account, market, "o-risk", query).risk
    assert within_placement == postgresql
    return postgresql


def test_risk_reads_of_an_empty_market(trader):
    from django.utils import timezone

    market = MarketFactory()
    assert risk_reads(trader, market, daily_since=timezone.now()) == sql.RiskReads(
        open_orders=0, daily_notional=D(0))
    assert risk_reads(trader, market, reference=False, open_orders=False) == sql.RiskReads()


def test_risk_reads_see_the_book_the_last_trade_and_the_accounts_open_and_daily_notional(trader):
    from datetime import timedelta

    from django.utils import timezone

    market = MarketFactory()
    other = ClientAccountFactory()
    fund(other, "USD", "50000")
    fund(other, "BTC", "5")
    place(other, market, "sell", size="1", price="105")
    place(other, market, "sell", size="0.5", price="103")
    place(trader, market, "buy", size="0.2", price="103")  # fills 0.2 @ 103: 20.6
    place(trader, market, "buy", size="1", price="99")  # rests: 99 committed
    place(other, market, "buy", size="1", price="100")
    match(market)
    place(trader, market, "buy", type="market", funds="50")  # new, by funds: 50

    reads = risk_reads(trader, market, daily_since=timezone.now() - timedelta(hours=24))

    assert (reads.best_bid, reads.best_ask, reads.last_price) == (D("100"), D("103"), D("103"))
    assert (reads.open_orders, reads.daily_notional) == (2, D("20.6") + D("99") + D("50"))


# --- core.db.models_by_id (the sequencer's drafts read their orders, fills and holds through it) ---------------


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_models_by_id_loads_what_in_bulk_loads(trader, monkeypatch, vendor):
    market = MarketFactory()
    orders = [place(trader, market, "buy", size="0.1", price=price, metadata={"n": price})
              for price in ("19000", "19100")]
    ids = [orders[0].pk, orders[1].pk, 999_999]
    expected = {pk: model_to_dict(order) for pk, order in Order.objects.in_bulk(ids).items()}
    with monkeypatch.context() as patched:
        patched.setattr(connection, "vendor", vendor)  # "sqlite": the IN-list form, on this database
        loaded = models_by_id(Order, ids)
    assert {pk: model_to_dict(order) for pk, order in loaded.items()} == expected
    assert sorted(expected) == sorted(o.pk for o in orders)
    assert models_by_id(Order, []) == {}
