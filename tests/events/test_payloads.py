"""What each state change writes to the event log, worked to the last unit, and that every payload is the REST
resource the API shows (README "Events: types")."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts import services as accounts
from accounts.models import Deposit, Role
from events.services import sequence_all
from ledger import services as ledger
from ledger.models import Purpose
from tests.api import api_client_for
from tests.factories import StaffFactory, allow_destination, fund, ledger_account_of
from trading import services as trading
from trading.models import MarketStatus

pytestmark = pytest.mark.django_db
D = Decimal


def events_of(client, **params) -> list[dict]:
    sequence_all()
    out, after = [], "0"
    while True:
        page = client.get("/api/v1/events/", {"after": after, "limit": 50, **params}).json()
        out += page["events"]
        after = page["cursor"]
        if not page["has_more"]:
            return out


def only(events, type_):
    return [e for e in events if e["type"] == type_]


@pytest.fixture
def bob():
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "BTC", "2")
    return client


def test_a_trade_writes_order_fill_and_hold_events_equal_to_the_rest_resources(market, alice, bob):
    ask = bob.post("/api/v1/orders/", {"market": "BTC-USD", "side": "sell", "size": "0.5", "price": "20000.00",
                                       "client_order_id": "ask-1"}, format="json").json()
    trading.market_match(market_id=market.pk)
    bid = alice.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.2", "price": "20100.00",
                                         "client_order_id": "bid-1"}, format="json").json()
    trading.market_match(market_id=market.pk)

    mine = events_of(alice)
    assert [e["type"] for e in mine] == ["api_key.created", "order.accepted", "hold.placed", "fill.created",
                                         "order.filled", "hold.released"]
    assert [e["account_seq"] for e in mine] == [1, 2, 3, 4, 5, 6]
    assert all(e["account"] == alice.account.pk for e in mine)
    assert only(mine, "order.accepted")[0]["data"] == bid  # the POST response, at that moment
    assert only(mine, "order.filled")[0]["data"] == alice.get(f"/api/v1/orders/{bid['id']}/").json()
    assert alice.get("/api/v1/orders/by-client-id/bid-1/").json() == only(mine, "order.filled")[0]["data"]

    # Worked example: 0.2 BTC at the maker's 20000.00: notional 4000, taker fee 0.2% = 8.00 for alice, who held
    # 0.2 x 20100 x 1.002 = 4028.04 and gets back 4028.04 - 4008.00 = 20.04; bob receives 4000 - 4.00 (0.1%).
    fill = only(mine, "fill.created")[0]["data"]
    rest_fill = alice.get("/api/v1/fills/").json()["results"][0]
    assert {k: v for k, v in fill.items() if k != "balances"} == rest_fill
    assert (fill["side"], fill["liquidity"], fill["price"], fill["size"], fill["fee"], fill["settled_quote"]) == (
        "buy", "taker", "20000.00", "0.20000000", "8.00", "4008.00")
    assert fill["balances"] == {"BTC": "0.20000000", "USD": "45992.00"}
    hold_placed, hold_released = only(mine, "hold.placed")[0]["data"], only(mine, "hold.released")[0]["data"]
    assert (hold_placed["asset"], hold_placed["amount"], hold_placed["status"]) == ("USD", "4028.04", "active")
    assert (hold_released["released"], hold_released["remaining"], hold_released["status"]) == (
        "20.04", "0.00", "released")

    theirs = events_of(bob)
    assert [e["type"] for e in theirs] == ["api_key.created", "order.accepted", "hold.placed", "order.open",
                                           "fill.created", "order.partially_filled"]
    maker_fill = only(theirs, "fill.created")[0]["data"]
    assert {k: v for k, v in maker_fill.items() if k != "balances"} == bob.get("/api/v1/fills/").json()["results"][0]
    assert (maker_fill["liquidity"], maker_fill["fee"], maker_fill["settled_quote"]) == ("maker", "4.00", "3996.00")
    assert maker_fill["balances"] == {"BTC": "1.80000000", "USD": "3996.00"}
    assert only(theirs, "order.partially_filled")[0]["data"] == bob.get(f"/api/v1/orders/{ask['id']}/").json()
    # Both sides' fill events carry the same fill id and market sequence order follows the batch.
    assert maker_fill["id"] == fill["id"]
    assert [e["market_seq"] for e in mine + theirs if e["market_seq"]] != []

    cancelled = bob.post(f"/api/v1/orders/{ask['id']}/cancel/").json()
    theirs = events_of(bob)
    assert [e["type"] for e in theirs[-2:]] == ["order.cancelled", "hold.released"]
    assert theirs[-2]["data"] == cancelled == bob.get(f"/api/v1/orders/{ask['id']}/").json()
    assert theirs[-1]["data"]["released"] == "0.30000000"  # 0.5 held, 0.2 sold


def test_a_fill_lists_running_balances_after_each_fill_of_one_batch(market, alice, bob):
    for n, price in enumerate(["20000.00", "20010.00", "20020.00"]):
        bob.post("/api/v1/orders/", {"market": "BTC-USD", "side": "sell", "size": "0.1", "price": price,
                                     "client_order_id": f"a{n}"}, format="json")
    alice.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "type": "market", "size": "0.3",
                                   "client_order_id": "sweep"}, format="json")
    trading.market_match(market_id=market.pk)  # one batch: three makers rest, then the sweep takes all three
    fills = [e["data"] for e in only(events_of(alice), "fill.created")]
    # Costs with the 0.2% taker fee, the running total rounded up: 2004.00; + 2005.002 = 4009.002 -> 4009.01
    # (a debit of 2005.01); + 2006.004 = 6015.006 -> 6015.01 (a debit of 2006.00).
    assert [f["balances"] for f in fills] == [
        {"BTC": "0.10000000", "USD": "47996.00"},
        {"BTC": "0.20000000", "USD": "45990.99"},
        {"BTC": "0.30000000", "USD": "43984.99"},
    ]
    balances = {b["asset"]: b["total"] for b in alice.get("/api/v1/balances/").json()}
    assert (balances["BTC"], balances["USD"]) == ("0.30000000", "43984.99")


def test_funding_account_keys_market_and_adjustment_events_equal_the_rest_resources(market):
    alice = api_client_for(role=Role.ADMIN)
    fund(alice.account, "USD", "50000")
    staff, checker = StaffFactory(is_superuser=True), StaffFactory(is_superuser=True)
    deposit = alice.post("/api/v1/deposits/", {"asset": "USD", "amount": "100.00", "bank_reference": "r1"},
                         format="json").json()
    stored = accounts.deposit_approve(deposit=Deposit.objects.get(pk=deposit["id"]), acting_user=staff)
    accounts.deposit_complete(deposit=stored, acting_user=checker)  # dual control: another person completes
    allow_destination(alice.account, "USD", "w1")
    withdrawal = alice.post("/api/v1/withdrawals/", {"asset": "USD", "amount": "10.00", "bank_reference": "w1"},
                            format="json", HTTP_IDEMPOTENCY_KEY="w-1").json()
    alice.post(f"/api/v1/withdrawals/{withdrawal['id']}/cancel/", {"reason": "changed my mind"}, format="json")
    key = alice.post("/api/v1/api-keys/", {"name": "second", "scopes": ["read"]}, format="json").json()
    alice.post(f"/api/v1/api-keys/{key['id']}/revoke/", format="json")
    accounts.account_freeze(account=alice.account, acting_user=staff, reason="review")
    accounts.account_unfreeze(account=alice.account, acting_user=staff)
    trading.market_status_set(market=market, status=MarketStatus.HALTED, acting_user=None)
    adjustment = ledger.adjustment_propose(account=ledger_account_of(alice.account), asset="USD", amount=D("5.5"),
                                           reason="fee refund", acting_user=staff)
    ledger.adjustment_approve(adjustment=adjustment, acting_user=checker)

    mine = events_of(alice)
    assert [e["type"] for e in mine] == [
        "api_key.created", "deposit.requested", "deposit.approved", "deposit.completed", "withdrawal.requested",
        "hold.placed", "withdrawal.cancelled", "hold.released", "api_key.created", "api_key.revoked",
        "account.status_changed", "account.status_changed", "market.status_changed", "adjustment.posted"]
    assert [e["account_seq"] for e in mine if e["account"]] == list(range(1, 14))
    public = only(mine, "market.status_changed")[0]
    assert (public["account"], public["account_seq"], public["market_seq"]) == (None, None, 1)
    assert public["data"] == alice.get("/api/v1/markets/BTC-USD/").json()
    assert public["data"]["status"] == "halted"
    assert only(mine, "deposit.completed")[0]["data"] == alice.get(f"/api/v1/deposits/{deposit['id']}/").json()
    assert only(mine, "deposit.requested")[0]["data"] == deposit
    assert only(mine, "withdrawal.requested")[0]["data"] == withdrawal
    assert only(mine, "withdrawal.cancelled")[0]["data"] == alice.get(
        f"/api/v1/withdrawals/{withdrawal['id']}/").json()
    assert only(mine, "hold.released")[0]["data"]["released"] == "10.00"
    assert only(mine, "api_key.revoked")[0]["data"] == alice.get(f"/api/v1/api-keys/{key['id']}/").json()
    assert only(mine, "api_key.created")[1]["data"] == {k: v for k, v in key.items() if k != "secret"}
    frozen, active = (e["data"] for e in only(mine, "account.status_changed"))
    account = alice.get("/api/v1/account/").json()
    assert active == {k: v for k, v in account.items() if k not in ("username", "role", "scopes")}
    assert (frozen["status"], active["status"]) == ("frozen", "active")
    posted = only(mine, "adjustment.posted")[0]["data"]
    assert (posted["amount"], posted["asset"], posted["status"], posted["reference"]) == (
        "5.50", "USD", "approved", f"adjustment:{adjustment.pk}")
    assert ledger.firm_account(Purpose.EQUITY)  # (the adjustment's other side)


def test_events_are_append_only_in_the_database(market, alice):
    from django.db import connection

    from events.models import Event, Sequenced

    sequence_all()
    with connection.cursor() as cursor:
        for table in ("events_event", "events_sequenced"):
            with pytest.raises(Exception, match="append-only"):
                from django.db import transaction

                with transaction.atomic():
                    cursor.execute(f"UPDATE {table} SET type = 'x'")
            with pytest.raises(Exception, match="append-only"):
                with transaction.atomic():
                    cursor.execute(f"DELETE FROM {table}")
    assert Event.objects.count() == Sequenced.objects.count() == 1
