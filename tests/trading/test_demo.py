import pytest

from console.demo_clients import demo_clients_create
from console.demo_orders import DEMO_ORDERS, demo_orders_place
from tests.factories import MarketFactory
from tests.trading.helpers import match
from trading.models import Fill, Order, OrderStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def demo_opt_in(settings):
    settings.DEMO_DATA = True


def test_demo_orders_rest_on_both_sides_and_a_second_run_places_nothing_new():
    btc = MarketFactory(symbol="BTC-USD")
    eth = MarketFactory(symbol="ETH-USD", base_id="ETH", lot_size="0.0001", min_size="0.0001")
    demo_clients_create()
    first = demo_orders_place()
    assert len(first) == len(DEMO_ORDERS)
    match(btc)
    match(eth)
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.OPEN} and not Fill.objects.exists()
    assert [o.pk for o in demo_orders_place()] == [o.pk for o in first]
    assert Order.objects.count() == len(DEMO_ORDERS)
