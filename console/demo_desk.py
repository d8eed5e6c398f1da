"""The demo quoting desk, called by ``seed_demo``: exposure limits, the firm's own inventory, and a fallback price
for the market without a demo book. Safe to run again (funding is idempotent by its reference)."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from trading.models import InventoryLimit, Market
from trading.services import quotes

# asset: (inventory the firm funds, max long, max short)
DEMO_INVENTORY = {
    "BTC": ("5", "20", "0"),
    "ETH": ("50", "200", "0"),
    "PAXG": ("20", "100", "0"),
    "USD": ("500000", "5000000", "0"),
    "USDP": ("500000", "5000000", "0"),
}
DEMO_FALLBACK_PRICES = {"PAXG-USD": "2650.00"}  # no demo orders rest on PAXG-USD: quotes use this price


@transaction.atomic
def demo_desk_create(*, acting_user, stdout=None) -> None:
    for asset, (amount, max_long, max_short) in DEMO_INVENTORY.items():
        InventoryLimit.objects.update_or_create(
            asset_id=asset, defaults={"max_long": Decimal(max_long), "max_short": Decimal(max_short)})
        quotes.inventory_fund(asset=asset, amount=Decimal(amount), reference=f"demo-inventory-{asset}",
                              reason="Demo: the firm's own inventory for quotes and conversions",
                              acting_user=acting_user)
    for symbol, price in DEMO_FALLBACK_PRICES.items():
        market = Market.objects.filter(symbol=symbol).first()
        if market is not None:
            quotes.market_pricing_set(market=market, fallback_price=Decimal(price), acting_user=acting_user)
    if stdout is not None:
        stdout.write("Demo desk: inventory and exposure limits in " + ", ".join(DEMO_INVENTORY) + "\n")
