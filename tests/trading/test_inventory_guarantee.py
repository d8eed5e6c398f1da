"""The exposure limits are PostgreSQL's guarantee (migration trading/0005), not only the services' checks: an
update of the firm's inventory balance beyond its limits is refused whoever writes it, raw SQL included."""

from decimal import Decimal as D

import pytest
from django.db import IntegrityError, connection, transaction

from tests.trading.quote_desk import inventory, inventory_fund, limits_set
from trading.models import InventoryLimit

pytestmark = pytest.mark.django_db


def set_inventory(asset: str, amount: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_balance SET amount = %s WHERE asset_id = %s AND account_id ="
                       " (SELECT id FROM ledger_ledgeraccount WHERE code = 'firm:inventory')", [amount, asset])


def test_an_update_beyond_the_limits_is_refused_by_the_database(db):
    limits_set("BTC", max_long="10", max_short="2")
    inventory_fund("BTC", "5")
    for beyond, side in (("10.00000001", "long limit 10"), ("-2.1", "short limit 2")):
        with pytest.raises(IntegrityError, match=f"inventory_limit: .*BTC position would be {beyond}.*{side}"):
            set_inventory("BTC", beyond)
    set_inventory("BTC", "10")
    set_inventory("BTC", "-2")
    assert inventory("BTC") == D("-2")


def test_a_position_beyond_a_lowered_limit_may_only_move_back(db):
    limits_set("BTC", max_long="10")
    inventory_fund("BTC", "8")
    limits_set("BTC", max_long="5")  # operations lower the limit below the position
    set_inventory("BTC", "7")  # toward the limit: allowed
    with pytest.raises(IntegrityError, match="inventory_limit"):
        set_inventory("BTC", "7.5")


def test_an_asset_without_limits_cannot_move(db):
    limits_set("ETH", max_long="10")
    inventory_fund("ETH", "1")
    InventoryLimit.objects.filter(asset_id="ETH").delete()
    with pytest.raises(IntegrityError, match="no exposure limit in ETH"):
        set_inventory("ETH", "2")
