"""Ascending time filters on orders and fills, and an order by its client order id."""

import pytest

from accounts.models import Role
from tests.api import api_client_for
from tests.factories import fund
from trading import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob():
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "BTC", "2")
    return client


def place(client, n, side="buy", price="20000.00"):
    return client.post("/api/v1/orders/", {"market": "BTC-USD", "side": side, "size": "0.1", "price": price,
                                           "client_order_id": f"c-{n}"}, format="json").json()


def test_created_after_lists_orders_and_fills_oldest_first_in_cursor_pages(market, alice, bob):
    placed = [place(alice, n) for n in range(5)]
    newest_first = alice.get("/api/v1/orders/").json()["results"]
    assert [o["id"] for o in newest_first] == [o["id"] for o in reversed(placed)]
    page = alice.get("/api/v1/orders/", {"created_after": placed[1]["created_at"], "page_size": 2}).json()
    assert [o["id"] for o in page["results"]] == [placed[1]["id"], placed[2]["id"]]
    rest = alice.get(page["next"]).json()
    assert [o["id"] for o in rest["results"]] == [placed[3]["id"], placed[4]["id"]]
    assert rest["next"] is None

    for n in range(2):
        bob.post("/api/v1/orders/", {"market": "BTC-USD", "side": "sell", "size": "0.1", "price": "20000.00",
                                     "client_order_id": f"s-{n}"}, format="json")
    services.market_match(market_id=market.pk)
    fills = alice.get("/api/v1/fills/").json()["results"]
    ascending = alice.get("/api/v1/fills/", {"created_after": fills[-1]["created_at"]}).json()["results"]
    assert [f["id"] for f in ascending] == sorted(f["id"] for f in fills)
    bad = alice.get("/api/v1/fills/", {"created_after": "yesterday"})
    assert (bad.status_code, bad.json()["field"]) == (400, "created_after")


def test_an_order_by_client_order_id(market, alice, bob):
    order = place(alice, 7)
    assert alice.get("/api/v1/orders/by-client-id/c-7/").json() == order
    assert alice.get("/api/v1/orders/by-client-id/nope/").status_code == 404
    assert bob.get("/api/v1/orders/by-client-id/c-7/").status_code == 404  # another account's
    assert api_client_for().get("/api/v1/orders/by-client-id/c-7/").status_code == 404
