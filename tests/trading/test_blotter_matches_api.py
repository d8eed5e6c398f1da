"""The trade blotter writes prices, notionals and fees exactly as the API does (issue 19: the blotter said
``30000`` where the API said ``30000.00``)."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Role
from compliance.reports import report_stream
from tests.api import api_client_for
from tests.factories import MarketFactory, fund
from tests.trading.helpers import match, place

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("tick, price", [("0.01", "30000"), ("0.001", "2.5")])
def test_blotter_amounts_read_like_the_api(tick, price):
    market = MarketFactory(symbol="BTC-USD", tick_size=Decimal(tick))
    buyer, seller = api_client_for(role=Role.TRADER), api_client_for(role=Role.TRADER)
    fund(buyer.account, "USD", "100000")
    fund(seller.account, "BTC", "1")
    place(seller.account, market, "sell", size="0.5", price=price)
    match(market)
    place(buyer.account, market, "buy", size="0.5", price=price)
    match(market)
    [api_fill] = buyer.get("/api/v1/fills/").json()["results"]
    now = timezone.now()
    body = b"".join(report_stream("trade_blotter", start=now - timedelta(hours=1), end=now + timedelta(hours=1),
                                  fmt="csv")).decode()
    [row] = csv.DictReader(io.StringIO(body.partition("\n")[2]))
    assert (row["price"], row["size"], row["quote_amount"], row["taker_fee"]) == (
        api_fill["price"], api_fill["size"], api_fill["quote_amount"], api_fill["fee"])
    assert row["price"] == {"30000": "30000.00", "2.5": "2.500"}[price]
